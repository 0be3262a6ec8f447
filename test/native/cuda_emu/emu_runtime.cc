// The CPU side of test/native/cuda_emu/cuda_runtime.h: device memory as
// tracked host allocations, and a grid as fibers (ucontext), one block at a
// time. Violations of the execution model print a line and abort, as a
// device fault ends a CUDA context: the test that caused it fails.
#include "cuda_runtime.h"

#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define GK_EMU_ASAN 1
#else
#define GK_EMU_ASAN 0
#endif

dim3 threadIdx;
dim3 blockIdx;
dim3 blockDim;
dim3 gridDim;

struct CUevent_st {
  std::chrono::steady_clock::time_point at;
  bool recorded = false;
};

namespace gk_emu {
namespace {

[[noreturn]] void Fatal(const std::string& what) {
  std::fprintf(stderr, "cuda emulator: %s (block %u, thread %u)\n", what.c_str(), blockIdx.x, threadIdx.x);
  std::abort();
}

// ---- device memory -------------------------------------------------------

std::mutex memory_mutex;
std::map<uintptr_t, size_t> allocations;  // base -> size
cudaError_t sticky = cudaSuccess;

// The allocation holding [p, p + n), or allocations.end().
std::map<uintptr_t, size_t>::const_iterator Holding(const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = allocations.upper_bound(a);
  if (it == allocations.begin()) return allocations.end();
  --it;
  if (a - it->first > it->second || n > it->second - (a - it->first)) return allocations.end();
  return it;
}

// GK_EMU_REPORT: one line per allocation and free, for tests to read.
// "free <bytes> live=<n> zero=<0|1> canary=<0|1>": zero when every byte was
// 0 at the free (wiped), canary when GK_EMU_CANARY (hex) occurred in it.
void Report(const std::string& line) {
  const char* file = std::getenv("GK_EMU_REPORT");
  if (file == nullptr || *file == 0) return;
  if (FILE* f = std::fopen(file, "a")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
  }
}

// Whether [p, p + n) lies inside one live allocation.
bool OnDevice(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(memory_mutex);
  return Holding(p, n) != allocations.end();
}

bool HoldsCanary(const uint8_t* p, size_t n) {
  const char* hex = std::getenv("GK_EMU_CANARY");
  if (hex == nullptr) return false;
  std::vector<uint8_t> canary;
  for (size_t i = 0; hex[i] != 0 && hex[i + 1] != 0; i += 2) canary.push_back(uint8_t(std::stoul(std::string(hex + i, 2), nullptr, 16)));
  return !canary.empty() && std::search(p, p + n, canary.begin(), canary.end()) != p + n;
}

// ---- fibers --------------------------------------------------------------

constexpr size_t kStackBytes = GK_EMU_ASAN ? (512u << 10) : (128u << 10);

struct Fiber {
  ucontext_t context;
  void* stack = nullptr;  // mmap'd, a guard page at the bottom
  unsigned tid = 0;
  bool done = false;
};

struct Warp {
  unsigned arrived = 0;
  uint64_t generation = 0;
  unsigned long long values[32] = {};
  unsigned long long snapshot[32] = {};
};

struct BlockRun {
  ucontext_t scheduler;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  const std::function<void()>* body = nullptr;
  size_t current = 0;
  unsigned barrier_arrived = 0;
  uint64_t barrier_generation = 0;
  bool progress = false;
#if GK_EMU_ASAN
  const void* scheduler_bottom = nullptr;
  size_t scheduler_size = 0;
#endif
};

std::mutex launch_mutex;
BlockRun* run = nullptr;
std::vector<void*> stacks;  // reused from launch to launch

void* Stack(size_t i) {
  while (stacks.size() <= i) {
    void* s = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) Fatal("cannot map a fiber stack");
    mprotect(s, 4096, PROT_NONE);  // overflow faults instead of corrupting
    stacks.push_back(s);
  }
  return stacks[i];
}

void SwitchToScheduler(bool dying) {
  Fiber& f = run->fibers[run->current];
#if GK_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(dying ? nullptr : &fake, run->scheduler_bottom, run->scheduler_size);
  swapcontext(&f.context, &run->scheduler);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  (void)dying;
  swapcontext(&f.context, &run->scheduler);
#endif
}

void FiberMain() {
#if GK_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &run->scheduler_bottom, &run->scheduler_size);
#endif
  (*run->body)();
  Fiber& f = run->fibers[run->current];
  f.done = true;
  run->progress = true;
  if (run->barrier_arrived > 0) Fatal("a thread returned while others wait at __syncthreads()");
  const Warp& w = run->warps[f.tid / 32];
  if (w.arrived > 0) Fatal("a thread returned while its warp waits at a shuffle");
  SwitchToScheduler(true);
}

void Resume(size_t i) {
  BlockRun& r = *run;
  r.current = i;
  threadIdx = dim3(r.fibers[i].tid);
#if GK_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, static_cast<char*>(r.fibers[i].stack) + 4096, kStackBytes - 4096);
  swapcontext(&r.scheduler, &r.fibers[i].context);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  swapcontext(&r.scheduler, &r.fibers[i].context);
#endif
}

void Yield() { SwitchToScheduler(false); }

// A function of its own: getcontext returns twice, which would put the
// caller's loop variables at risk (-Wclobbered).
__attribute__((noinline)) void StartFiber(Fiber* f, unsigned tid, void* stack) {
  f->tid = tid;
  f->stack = stack;
#if GK_EMU_ASAN
  // A dead fiber's frames may have left poisoned redzones on this stack.
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(stack) + 4096, kStackBytes - 4096);
#endif
  getcontext(&f->context);
  f->context.uc_stack.ss_sp = static_cast<char*>(stack) + 4096;
  f->context.uc_stack.ss_size = kStackBytes - 4096;
  f->context.uc_link = nullptr;
  makecontext(&f->context, FiberMain, 0);
}

// ---- shared memory -------------------------------------------------------

}  // namespace
}  // namespace gk_emu

// The linker's bounds of the section that holds every __shared__ variable
// (weak: a program without any still links).
extern "C" char __start_gk_emu_shared[] __attribute__((weak));
extern "C" char __stop_gk_emu_shared[] __attribute__((weak));

namespace gk_emu {
namespace {

// Fills every block's shared memory with fresh noise. Not instrumented:
// under ASan the section also holds the redzones between the variables,
// which must stay poisoned for the kernels but may be written from here.
__attribute__((no_sanitize("address"))) void ScrambleShared(uint64_t seed) {
  char* const begin = __start_gk_emu_shared;
  char* const end = __stop_gk_emu_shared;
  if (begin == nullptr || end <= begin) return;
  // Plain stores, never memcpy/memset: ASan's interceptors would check them.
  auto next = [&seed] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  char* p = begin;
  for (; p < end && reinterpret_cast<uintptr_t>(p) % 8 != 0; ++p) *p = char(next());
  for (; end - p >= 8; p += 8) *reinterpret_cast<uint64_t*>(p) = next();
  for (; p < end; ++p) *p = char(next());
}

// Runs one block: every thread to completion, round robin between sync points.
void RunBlock(unsigned block, const std::function<void()>& body) {
  BlockRun r;
  run = &r;
  r.body = &body;
  blockIdx = dim3(block);
  const unsigned n = blockDim.x;
  r.fibers.resize(n);
  r.warps.resize((n + 31) / 32);
  // A different order in every block (fixed, so failures repeat): code
  // that leans on threads running in index order between barriers breaks.
  std::vector<unsigned> order(n);
  for (unsigned t = 0; t < n; ++t) order[t] = t;
  uint64_t seed = 0x9e3779b97f4a7c15ull * (block + 1);
  for (unsigned t = n; t > 1; --t) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(order[t - 1], order[(seed >> 33) % t]);
  }
  ScrambleShared(seed | 1);
  for (unsigned t = 0; t < n; ++t) StartFiber(&r.fibers[t], order[t], Stack(t));
  for (;;) {
    r.progress = false;
    bool live = false;
    for (size_t i = 0; i < n; ++i) {
      if (r.fibers[i].done) continue;
      Resume(i);
      live = live || !r.fibers[i].done;
    }
    if (!live) break;
    if (!r.progress) Fatal("deadlock: threads wait at a barrier or shuffle that the others never reach");
  }
  run = nullptr;
}

}  // namespace

bool IsDevicePointer(const void* p) { return p == nullptr || OnDevice(p, 0); }

void SetLaunchError(cudaError_t err, const char* why) {
  std::fprintf(stderr, "cuda emulator: launch refused: %s\n", why);
  std::lock_guard<std::mutex> lock(memory_mutex);
  sticky = err;
}

bool RunGrid(const LaunchConfig& config, const std::function<void()>& body) {
  const dim3 g = config.grid;
  const dim3 b = config.block;
  if (g.x == 0 || g.x > 0x7fffffffu || g.y != 1 || g.z != 1 || b.x == 0 || b.x > 1024 || b.y != 1 || b.z != 1) {
    SetLaunchError(cudaErrorInvalidConfiguration, "grid or block size out of range");
    return false;
  }
  std::lock_guard<std::mutex> lock(launch_mutex);
  gridDim = g;
  blockDim = b;
  for (unsigned block = 0; block < g.x; ++block) RunBlock(block, body);
  return true;
}

}  // namespace gk_emu

using gk_emu::Fatal;

void __syncthreads() {
  auto& r = *gk_emu::run;
  const uint64_t generation = r.barrier_generation;
  if (++r.barrier_arrived == blockDim.x) {
    r.barrier_arrived = 0;
    ++r.barrier_generation;
    r.progress = true;
    return;
  }
  while (r.barrier_generation == generation) gk_emu::Yield();
}

unsigned long long __shfl_xor_bits(unsigned mask, unsigned long long bits, int lane_mask) {
  auto& r = *gk_emu::run;
  const unsigned warp = threadIdx.x / 32;
  const unsigned lane = threadIdx.x % 32;
  const unsigned lanes = std::min(32u, blockDim.x - warp * 32);
  const unsigned full = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  if (mask != full) Fatal("__shfl_xor_sync with a mask that is not the whole warp");
  auto& w = r.warps[warp];
  w.values[lane] = bits;
  const uint64_t generation = w.generation;
  if (++w.arrived == lanes) {
    std::copy(std::begin(w.values), std::end(w.values), std::begin(w.snapshot));
    w.arrived = 0;
    ++w.generation;
    r.progress = true;
  } else {
    while (w.generation == generation) gk_emu::Yield();
  }
  const unsigned from = lane ^ unsigned(lane_mask);
  return from < lanes ? w.snapshot[from] : bits;
}

// ---- runtime API ---------------------------------------------------------

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) { return err == cudaSuccess ? "no error" : "emulated CUDA error"; }

cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lock(gk_emu::memory_mutex);
  const cudaError_t err = gk_emu::sticky;
  gk_emu::sticky = cudaSuccess;
  return err;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return cudaErrorInvalidValue;
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "guardkernel CUDA emulator (CPU)");
  prop->totalGlobalMem = size_t(1) << 32;
  prop->major = 7;
  prop->minor = 5;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }

cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 0;  // no CUDA runtime: the emulator
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (size == 0) {
    *ptr = nullptr;
    return cudaSuccess;
  }
  // 256-byte aligned, as cudaMalloc promises; garbage, as device memory is.
  void* p = std::aligned_alloc(256, (size + 255) / 256 * 256);
  if (p == nullptr) return cudaErrorMemoryAllocation;
  std::memset(p, 0xa5, size);
  size_t live = 0;
  {
    std::lock_guard<std::mutex> lock(gk_emu::memory_mutex);
    gk_emu::allocations[reinterpret_cast<uintptr_t>(p)] = size;
    live = gk_emu::allocations.size();
  }
  gk_emu::Report("alloc " + std::to_string(size) + " live=" + std::to_string(live));
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  size_t size = 0;
  size_t live = 0;
  {
    std::lock_guard<std::mutex> lock(gk_emu::memory_mutex);
    auto it = gk_emu::allocations.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == gk_emu::allocations.end()) return cudaErrorInvalidDevicePointer;
    size = it->second;
    gk_emu::allocations.erase(it);
    live = gk_emu::allocations.size();
  }
  const uint8_t* bytes = static_cast<const uint8_t*>(ptr);
  const bool zero = std::all_of(bytes, bytes + size, [](uint8_t b) { return b == 0; });
  const bool canary = gk_emu::HoldsCanary(bytes, size);
  gk_emu::Report("free " + std::to_string(size) + " live=" + std::to_string(live) + " zero=" + (zero ? "1" : "0") + " canary=" + (canary ? "1" : "0"));
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t count) {
  if (count == 0) return cudaSuccess;
  if (!gk_emu::OnDevice(ptr, count)) return cudaErrorInvalidValue;
  std::memset(ptr, value, count);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (count == 0) return cudaSuccess;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost) return cudaErrorInvalidValue;  // unused by the addon
  if (gk_emu::OnDevice(dst, count) != dst_device || gk_emu::OnDevice(src, count) != src_device) return cudaErrorInvalidValue;
  std::memmove(dst, src, count);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (event == nullptr) return cudaErrorInvalidResourceHandle;
  event->at = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) { return event == nullptr ? cudaErrorInvalidResourceHandle : cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (start == nullptr || end == nullptr || !start->recorded || !end->recorded) return cudaErrorInvalidResourceHandle;
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}
