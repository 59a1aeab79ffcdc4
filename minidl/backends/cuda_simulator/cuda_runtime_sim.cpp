// The CUDA simulator's runtime: the grid loop, the fiber scheduler of a block, and the guarded
// staging of kernel arguments. Compiled into every simulated module beside the kernels.
//
// Scheduling. A block's threads start in order on a "runner" fiber that starts the next thread
// whenever the current one finishes, so a kernel without barriers costs one context switch per
// block. A thread that reaches __syncthreads or a warp operation parks on its fiber (its stack
// stays live) and the scheduler continues with the next thread on a fresh fiber. When no thread
// can run, the scheduler releases every warp operation whose lanes have all arrived, or the
// barrier once every thread of the block waits at it; if neither is possible the kernel would
// hang or is undefined on a GPU, and the launch fails with a description of who waits where.
//
// Checking. Every pointer argument is copied into its own mapping: the data ends exactly where
// an inaccessible page begins (a read or write past the end faults at once), the bytes before
// it hold a guard pattern (checked after the launch), and the whole mapping is read-only for a
// const pointer. A fault inside a kernel is caught (SIGSEGV on an alternate stack), turned into
// an error naming the argument, the element and the thread, and the launch returns.
#include "cuda_runtime_sim.h"

#include <dlfcn.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <stdexcept>
#include <vector>

namespace minidl_sim {

Coordinates now;

namespace {

// NaN as float and as double: a read before an argument or of unwritten shared memory shows.
constexpr unsigned char GUARD_BYTE = 0xFF;
constexpr std::size_t STACK_BYTES = 256 * 1024;
constexpr std::size_t MAX_THREADS = 1024;

enum class State : unsigned char { UNSTARTED, READY, RUNNING, BARRIER, WARP, DONE };

struct Fiber {
    ucontext_t context;
    char* stack;      // the lowest page is inaccessible: an overflow faults
    int thread = -1;  // the thread it runs, -1 while it is free
};

struct Thread {
    State state = State::UNSTARTED;
    Fiber* fiber = nullptr;
    WarpOp op = WarpOp::SYNC;
    unsigned int mask = 0;
    std::uint64_t bits = 0;
    int b = 0, width = 32;
};

struct Staged {
    int arg;
    char* region;
    std::size_t region_bytes, front_bytes, nbytes, item;
    char* data;
    char* host;
    bool is_const;
};

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string format(const char* pattern, ...) {
    char buffer[1024];
    va_list list;
    va_start(list, pattern);
    vsnprintf(buffer, sizeof buffer, pattern, list);
    va_end(list);
    return buffer;
}

// The state of the launch in progress (one at a time: the simulator is single-threaded).
struct Launch {
    void (*body)(void*) = nullptr;
    void* context = nullptr;
    std::vector<Thread> threads;
    std::vector<Fiber*> all_fibers, free_fibers;
    std::size_t next_unstarted = 0;
    ucontext_t scheduler;
    Fiber* running = nullptr;
    std::vector<Staged> staged;
    sigjmp_buf on_fault;
    void* volatile fault_address = nullptr;
    bool fibers_dirty = false;  // a fault abandoned fibers mid-kernel
    std::string error;
} g;

std::size_t page_bytes() {
    static const std::size_t bytes = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return bytes;
}

std::string thread_name(std::size_t t) {
    const dim3 b = now.block_dim;
    return format("thread (%zu, %zu, %zu) of block (%u, %u, %u)", t % b.x, t / b.x % b.y,
                  t / (b.x * b.y), now.block.x, now.block.y, now.block.z);
}

void enter(std::size_t t) {
    const dim3 b = now.block_dim;
    now.thread = {static_cast<unsigned int>(t % b.x), static_cast<unsigned int>(t / b.x % b.y),
                  static_cast<unsigned int>(t / (b.x * b.y))};
}

// ----- Fibers --------------------------------------------------------------------------------

void fiber_main() {
    for (;;) {
        Fiber* self = g.running;
        while (g.next_unstarted < g.threads.size()) {
            const std::size_t t = g.next_unstarted++;
            self->thread = static_cast<int>(t);
            g.threads[t].fiber = self;
            g.threads[t].state = State::RUNNING;
            enter(t);
            g.body(g.context);
            g.threads[t].state = State::DONE;
            g.threads[t].fiber = nullptr;
        }
        self->thread = -1;
        swapcontext(&self->context, &g.scheduler);
    }
}

void make_fresh(Fiber* fiber) {
    getcontext(&fiber->context);
    fiber->context.uc_stack.ss_sp = fiber->stack;
    fiber->context.uc_stack.ss_size = STACK_BYTES;
    fiber->context.uc_link = nullptr;
    fiber->thread = -1;
    makecontext(&fiber->context, fiber_main, 0);
}

Fiber* free_fiber() {
    if (!g.free_fibers.empty()) {
        Fiber* fiber = g.free_fibers.back();
        g.free_fibers.pop_back();
        return fiber;
    }
    void* memory = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        throw Error("cannot map a fiber stack");
    }
    mprotect(memory, page_bytes(), PROT_NONE);
    Fiber* fiber = new Fiber;
    fiber->stack = static_cast<char*>(memory);
    g.all_fibers.push_back(fiber);
    make_fresh(fiber);
    return fiber;
}

// Runs `fiber` until its thread parks or it has no thread left to start.
void resume(Fiber* fiber) {
    g.running = fiber;
    if (fiber->thread >= 0) {
        g.threads[fiber->thread].state = State::RUNNING;
        enter(static_cast<std::size_t>(fiber->thread));
    }
    swapcontext(&g.scheduler, &fiber->context);
    if (fiber->thread < 0) {
        g.free_fibers.push_back(fiber);
    }
}

// Called by the running thread: wait in `state` until the scheduler releases it.
void park(State state) {
    Fiber* self = g.running;
    g.threads[self->thread].state = state;
    swapcontext(&self->context, &g.scheduler);
}

Thread& current() {
    return g.threads[g.running->thread];
}

// ----- Warps and barriers --------------------------------------------------------------------

const char* op_name(WarpOp op) {
    static const char* const names[] = {"__syncwarp", "__shfl_sync", "__shfl_up_sync",
                                        "__shfl_down_sync", "__shfl_xor_sync"};
    return names[static_cast<int>(op)];
}

// The source lane of `lane` for one shuffle, by the PTX rule: lanes form segments of `width`;
// a source outside the lane's segment (or past its bounds) gives the lane its own value.
int source_lane(const Thread& t, int lane) {
    const int segment_mask = (32 - t.width) & 31;  // the bits that pick the segment
    const int min_lane = lane & segment_mask;
    const int max_lane = min_lane | (31 & ~segment_mask);
    int j = lane;
    bool inside = true;
    switch (t.op) {
        case WarpOp::IDX: j = min_lane | (t.b & ~segment_mask); inside = j <= max_lane; break;
        case WarpOp::UP: j = lane - t.b; inside = j >= min_lane; break;
        case WarpOp::DOWN: j = lane + t.b; inside = j <= max_lane; break;
        case WarpOp::XOR: j = lane ^ t.b; inside = j <= max_lane; break;
        case WarpOp::SYNC: break;
    }
    return inside ? j : lane;
}

// Releases every warp operation whose named lanes have all arrived; true if any was released.
bool release_warps() {
    bool released = false;
    const std::size_t n = g.threads.size();
    for (std::size_t first = 0; first < n; first += 32) {
        for (std::size_t t = first; t < std::min(first + 32, n); ++t) {
            const Thread& lead = g.threads[t];
            if (lead.state != State::WARP) {
                continue;
            }
            const int lane = static_cast<int>(t - first);
            if (!(lead.mask >> lane & 1u)) {
                throw Error(format("%s with mask 0x%08x does not name the calling lane %d (%s)",
                                   op_name(lead.op), lead.mask, lane, thread_name(t).c_str()));
            }
            bool all_here = true;
            for (int other = 0; other < 32; ++other) {
                if (!(lead.mask >> other & 1u)) {
                    continue;
                }
                const std::size_t u = first + static_cast<std::size_t>(other);
                if (u >= n) {
                    throw Error(format("%s with mask 0x%08x names lane %d, which this block of "
                                       "%zu threads does not have", op_name(lead.op), lead.mask,
                                       other, n));
                }
                const Thread& peer = g.threads[u];
                if (peer.state == State::DONE) {
                    throw Error(format("%s with mask 0x%08x waits for lane %d, which has exited "
                                       "(%s)", op_name(lead.op), lead.mask, other,
                                       thread_name(t).c_str()));
                }
                if (peer.state == State::WARP && (peer.mask != lead.mask || peer.op != lead.op)) {
                    throw Error(format("lanes %d and %d of a warp meet in different warp "
                                       "operations (%s mask 0x%08x, %s mask 0x%08x)", lane, other,
                                       op_name(lead.op), lead.mask, op_name(peer.op), peer.mask));
                }
                all_here = all_here && peer.state == State::WARP;
            }
            if (!all_here) {
                continue;
            }
            std::uint64_t results[32];
            for (int other = 0; other < 32; ++other) {
                if (lead.mask >> other & 1u) {
                    const Thread& peer = g.threads[first + static_cast<std::size_t>(other)];
                    const int j = source_lane(peer, other);
                    if (!(lead.mask >> j & 1u)) {
                        throw Error(format("lane %d reads lane %d in %s, but the mask 0x%08x "
                                           "leaves lane %d out (undefined on a GPU)", other, j,
                                           op_name(peer.op), lead.mask, j));
                    }
                    results[other] = g.threads[first + static_cast<std::size_t>(j)].bits;
                }
            }
            for (int other = 0; other < 32; ++other) {
                if (lead.mask >> other & 1u) {
                    Thread& peer = g.threads[first + static_cast<std::size_t>(other)];
                    peer.bits = results[other];
                    peer.state = State::READY;
                }
            }
            released = true;
        }
    }
    return released;
}

std::string who_waits() {
    std::size_t counts[6] = {};
    for (const Thread& t : g.threads) {
        ++counts[static_cast<int>(t.state)];
    }
    return format("%zu threads wait at __syncthreads, %zu at a warp operation, %zu have exited",
                  counts[static_cast<int>(State::BARRIER)], counts[static_cast<int>(State::WARP)],
                  counts[static_cast<int>(State::DONE)]);
}

bool release_barrier() {
    for (const Thread& t : g.threads) {
        if (t.state != State::BARRIER) {
            return false;
        }
    }
    for (Thread& t : g.threads) {
        t.state = State::READY;
    }
    return true;
}

// ----- Shared memory -------------------------------------------------------------------------

// This module's thread-local block, which holds its __shared__ variables and the anchor below;
// writing the anchor makes glibc allocate the block, which it does lazily.
thread_local volatile char tls_anchor;

struct TlsBlock {
    char* start = nullptr;
    std::size_t bytes = 0;
};

int find_tls(struct dl_phdr_info* info, std::size_t, void* out) {
    Dl_info self;
    dladdr(reinterpret_cast<void*>(&find_tls), &self);
    if (reinterpret_cast<void*>(info->dlpi_addr) != self.dli_fbase) {
        return 0;
    }
    for (int k = 0; k < info->dlpi_phnum; ++k) {
        if (info->dlpi_phdr[k].p_type == PT_TLS) {
            static_cast<TlsBlock*>(out)->bytes = info->dlpi_phdr[k].p_memsz;
        }
    }
    return 1;
}

TlsBlock shared_memory() {
    static const TlsBlock block = [] {
        TlsBlock found;
        dl_iterate_phdr(find_tls, &found);
        if (found.bytes) {
            tls_anchor = 0;
            Dl_info self;
            dladdr(reinterpret_cast<void*>(&find_tls), &self);
            void* handle = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD);
            void* start = nullptr;
            dlinfo(handle, RTLD_DI_TLS_DATA, &start);
            dlclose(handle);
            found.start = static_cast<char*>(start);
        }
        return found;
    }();
    return block;
}

// ----- Blocks and the grid -------------------------------------------------------------------

void run_block(std::size_t threads) {
    g.threads.assign(threads, Thread());
    g.next_unstarted = 0;
    const TlsBlock shared = shared_memory();
    if (shared.start) {
        std::memset(shared.start, GUARD_BYTE, shared.bytes);
    }
    for (;;) {
        if (g.next_unstarted < threads) {
            resume(free_fiber());
            continue;
        }
        bool resumed = false;
        for (Thread& t : g.threads) {
            if (t.state == State::READY) {
                resume(t.fiber);
                resumed = true;
            }
        }
        if (resumed || release_warps()) {
            continue;
        }
        if (std::all_of(g.threads.begin(), g.threads.end(),
                        [](const Thread& t) { return t.state == State::DONE; })) {
            return;
        }
        if (!release_barrier()) {
            throw Error(format("block (%u, %u, %u) cannot go on: %s (a GPU would hang or "
                               "behave undefined)", now.block.x, now.block.y, now.block.z,
                               who_waits().c_str()));
        }
    }
}

// ----- Guarded staging -----------------------------------------------------------------------

void stage(int arg, const Param& param, void** slot, long long nbytes) {
    char* host = *static_cast<char**>(slot[0]);
    if (host == nullptr) {
        return;
    }
    for (Staged& s : g.staged) {  // the same buffer passed twice is staged once
        if (s.host == host && s.nbytes == static_cast<std::size_t>(nbytes)) {
            s.is_const = s.is_const && param.is_const;
            *static_cast<char**>(slot[0]) = s.data;
            return;
        }
    }
    const std::size_t page = page_bytes();
    const std::size_t bytes = static_cast<std::size_t>(nbytes);
    const std::size_t front = (bytes + page - 1) / page * page + page;  // >= one guard page
    Staged s{arg, nullptr, front + page, front - bytes, bytes, param.item, nullptr, host,
             param.is_const};
    void* memory = mmap(nullptr, s.region_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        throw Error(format("cannot map %zu bytes for argument %d", s.region_bytes, arg));
    }
    s.region = static_cast<char*>(memory);
    s.data = s.region + s.front_bytes;
    std::memset(s.region, GUARD_BYTE, s.front_bytes);
    std::memcpy(s.data, host, bytes);
    mprotect(s.region + front, page, PROT_NONE);
    g.staged.push_back(s);
    *static_cast<char**>(slot[0]) = s.data;
}

void protect_const_arguments() {
    for (const Staged& s : g.staged) {
        if (s.is_const) {
            mprotect(s.region, s.front_bytes + s.nbytes, PROT_READ);
        }
    }
}

// After the launch: the guard bytes must be intact; then results go back to the host.
void unstage(bool check) {
    std::string problem;
    for (const Staged& s : g.staged) {
        if (check && problem.empty() && !s.is_const) {
            for (std::size_t k = 0; k < s.front_bytes; ++k) {
                if (static_cast<unsigned char>(s.region[k]) != GUARD_BYTE) {
                    const long long before = static_cast<long long>(
                        (s.front_bytes - k + s.item - 1) / s.item);
                    problem = format("out-of-bounds write to argument %d: element -%lld (before "
                                     "its first element) was written", s.arg, before);
                    break;
                }
            }
        }
        if (!s.is_const && problem.empty() && check) {
            std::memcpy(s.host, s.data, s.nbytes);
        }
        munmap(s.region, s.region_bytes);
    }
    g.staged.clear();
    if (!problem.empty()) {
        throw Error(problem);
    }
}

std::string describe_fault(void* address) {
    const char* at = static_cast<const char*>(address);
    std::string where = g.running && g.running->thread >= 0
        ? thread_name(static_cast<std::size_t>(g.running->thread)) : "the runtime";
    for (const Staged& s : g.staged) {
        const char* end = s.data + s.nbytes;
        if (at >= end && at < end + page_bytes()) {
            return format("out-of-bounds access to argument %d: element %lld of %zu (past its "
                          "end), by %s", s.arg, static_cast<long long>((at - s.data) / s.item),
                          s.nbytes / s.item, where.c_str());
        }
        if (s.is_const && at >= s.region && at < end) {
            return format("write to argument %d, a const pointer: element %lld, by %s", s.arg,
                          static_cast<long long>((at - s.data) / s.item), where.c_str());
        }
    }
    for (const Fiber* f : g.all_fibers) {
        if (at >= f->stack && at < f->stack + page_bytes()) {
            return format("stack overflow (more than %zu KiB) in %s", STACK_BYTES / 1024,
                          where.c_str());
        }
    }
    return format("invalid memory access at %p by %s: not inside any kernel argument (a wild "
                  "or null pointer)", address, where.c_str());
}

void on_fault(int, siginfo_t* info, void*) {
    g.fault_address = info->si_addr;
    siglongjmp(g.on_fault, 1);
}

// Installs the fault handler (on its own stack) for the lifetime of a launch.
struct FaultGuard {
    struct sigaction old_segv, old_bus;
    stack_t old_stack;
    std::vector<char> stack = std::vector<char>(64 * 1024);
    FaultGuard() {
        stack_t alternate{};
        alternate.ss_sp = stack.data();
        alternate.ss_size = stack.size();
        sigaltstack(&alternate, &old_stack);
        struct sigaction action{};
        action.sa_sigaction = on_fault;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, &old_segv);
        sigaction(SIGBUS, &action, &old_bus);
    }
    ~FaultGuard() {
        sigaction(SIGSEGV, &old_segv, nullptr);
        sigaction(SIGBUS, &old_bus, nullptr);
        sigaltstack(&old_stack, nullptr);
    }
};

void check_config(const LaunchConfig& c) {
    const unsigned long long threads = 1ull * c.block.x * c.block.y * c.block.z;
    if (threads == 0 || threads > MAX_THREADS || c.block.z > 64) {
        throw Error(format("block (%u, %u, %u) is not a valid CUDA block: 1 to %zu threads, "
                           "z at most 64", c.block.x, c.block.y, c.block.z, MAX_THREADS));
    }
    if (1ull * c.grid.x * c.grid.y * c.grid.z == 0 || c.grid.y > 65535 || c.grid.z > 65535) {
        throw Error(format("grid (%u, %u, %u) is not a valid CUDA grid", c.grid.x, c.grid.y,
                           c.grid.z));
    }
}

}  // namespace

std::uint64_t warp_exchange(WarpOp op, unsigned int mask, std::uint64_t bits, int b, int width) {
    Thread& t = current();
    t.op = op;
    t.mask = mask;
    t.bits = bits;
    t.b = b;
    t.width = width;
    park(State::WARP);
    return current().bits;
}

int run_grid(const LaunchConfig& config, const Param* params, int count, void** args,
             const long long* sizes, void (*body)(void*), void* context) {
    g.error.clear();
    g.body = body;
    g.context = context;
    g.running = nullptr;
    if (g.fibers_dirty) {
        g.free_fibers.clear();
        for (Fiber* f : g.all_fibers) {
            make_fresh(f);
            g.free_fibers.push_back(f);
        }
        g.fibers_dirty = false;
    }
    bool fine = false;
    try {
        check_config(config);
        for (int k = 0; k < count; ++k) {
            if (params[k].pointer) {
                stage(k, params[k], &args[k], sizes[k]);
            }
        }
        protect_const_arguments();
        now.grid_dim = config.grid;
        now.block_dim = config.block;
        const std::size_t threads = 1ull * config.block.x * config.block.y * config.block.z;
        FaultGuard guard;
        if (sigsetjmp(g.on_fault, 1) == 0) {
            for (unsigned int z = 0; z < config.grid.z; ++z) {
                for (unsigned int y = 0; y < config.grid.y; ++y) {
                    for (unsigned int x = 0; x < config.grid.x; ++x) {
                        now.block = {x, y, z};
                        run_block(threads);
                    }
                }
            }
            fine = true;
        } else {
            g.fibers_dirty = true;
            g.error = describe_fault(g.fault_address);
        }
    } catch (const Error& error) {
        g.fibers_dirty = true;
        g.error = error.what();
    }
    std::fflush(stdout);
    try {
        unstage(fine);
    } catch (const Error& error) {
        g.error = error.what();
        fine = false;
    }
    return fine ? 0 : 1;
}

}  // namespace minidl_sim

void __syncthreads() {
    minidl_sim::park(minidl_sim::State::BARRIER);
}

MINIDL_SIM_EXPORT const char* minidl_sim_error() {
    return minidl_sim::g.error.c_str();
}
