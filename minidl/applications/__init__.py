"""Classic architectures, built layer by layer as in Keras's applications."""
from minidl.applications.mobilenet import MobileNet
from minidl.applications.vgg16 import VGG16
