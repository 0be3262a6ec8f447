// Linux process sandbox: clone3 + (in the child, before execve) rlimits,
// a process group, an optional cgroup join, an optional user + network
// namespace (with `lo` up for 'loopback'), PR_SET_NO_NEW_PRIVS, Landlock and a
// seccomp-bpf filter. The parent reaps the child from a waiter thread (poll on
// a pidfd, then wait4 for the rusage) and enforces the wall-clock limit there,
// so the event loop never blocks.
//
// Between clone and execve the child is a copy of one thread of a
// multithreaded process: it only makes raw system calls on memory prepared
// before the clone (paths, argv/envp arrays, the BPF program, the Landlock
// ruleset fd, the namespace map texts). Any failure there is written to a
// CLOEXEC pipe as (stage, errno) and the child exits without exec: a
// confinement that was asked for and did not apply never runs the command.
#if defined(__linux__)

#include "sandbox/process_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

namespace gk {
namespace {

// ---------------------------------------------------------------- stages
// Where a child stopped before exec; lib/sandbox/process-linux.ts names them.
enum Stage : int32_t {
  kStageSignals = 1,
  kStageProcessGroup = 2,
  kStageCgroup = 3,
  kStageUserNamespace = 4,
  kStageIdMaps = 5,
  kStageLoopback = 6,
  kStageRlimit = 7,
  kStageStdio = 8,
  kStageChdir = 9,
  kStageNoNewPrivs = 10,
  kStageLandlock = 11,
  kStageSeccomp = 12,
  kStageExec = 13,
  kStageParentDeath = 14,
  kStageCloseFds = 15,
};

struct ChildError {
  int32_t stage;
  int32_t err;
};

// ---------------------------------------------------------------- seccomp
#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#define GK_NO_SECCOMP_ARCH 1
constexpr uint32_t kAuditArch = 0;
#endif

constexpr uint32_t kRetAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kRetEperm = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
constexpr uint32_t kRetEnosys = SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA);
constexpr uint32_t kRetKill = SECCOMP_RET_KILL_PROCESS;

// A confined tool never needs these; using them is an attack: the process dies (SIGSYS).
const int kKillSyscalls[] = {
    __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev, __NR_bpf,
    __NR_kexec_load,
#ifdef __NR_kexec_file_load
    __NR_kexec_file_load,
#endif
    __NR_init_module, __NR_finit_module, __NR_delete_module, __NR_open_by_handle_at,
#ifdef __NR_iopl
    __NR_iopl,
#endif
#ifdef __NR_ioperm
    __NR_ioperm,
#endif
};

// Denied with EPERM: programs probe these and cope with a refusal.
const int kEpermSyscalls[] = {
    __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot,
#ifdef __NR_move_mount
    __NR_move_mount, __NR_open_tree, __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick,
#endif
#ifdef __NR_mount_setattr
    __NR_mount_setattr,
#endif
    __NR_unshare, __NR_setns, __NR_keyctl, __NR_add_key, __NR_request_key,
    __NR_perf_event_open, __NR_userfaultfd, __NR_setsid, __NR_setpgid, __NR_acct,
    __NR_swapon, __NR_swapoff, __NR_reboot, __NR_quotactl, __NR_name_to_handle_at,
    __NR_vhangup, __NR_settimeofday, __NR_clock_settime, __NR_clock_adjtime,
    __NR_sethostname, __NR_setdomainname, __NR_fanotify_init, __NR_syslog,
#ifdef __NR_io_uring_setup
    __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
#endif
#ifdef __NR_lookup_dcookie
    __NR_lookup_dcookie,
#endif
#ifdef __NR_uselib
    __NR_uselib,
#endif
};

constexpr uint32_t kNamespaceCloneFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                          CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;

sock_filter Stmt(uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; }
sock_filter Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { return sock_filter{code, jt, jf, k}; }

constexpr uint32_t ArgLow(int i) { return static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * i); }

std::vector<sock_filter> BuildSeccompFilter() {
  std::vector<sock_filter> p;
  // Wrong architecture (e.g. a 32-bit entry on a 64-bit kernel): kill.
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetKill));
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
#if defined(__x86_64__)
  // x32 system calls share the arch value: refuse them all.
  p.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetKill));
#endif
  for (int nr : kKillSyscalls) {
    p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
    p.push_back(Stmt(BPF_RET | BPF_K, kRetKill));
  }
  for (int nr : kEpermSyscalls) {
    p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
    p.push_back(Stmt(BPF_RET | BPF_K, kRetEperm));
  }
  // clone3 passes its flags in memory the filter cannot read: ENOSYS makes
  // libc fall back to clone, whose flags it can.
#ifdef __NR_clone3
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetEnosys));
#endif
  // clone with a namespace flag: EPERM.
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4));
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, ArgLow(0)));
  p.push_back(Jump(BPF_JMP | BPF_JSET | BPF_K, kNamespaceCloneFlags, 0, 1));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetEperm));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetAllow));
  // ioctl TIOCSTI / TIOCLINUX (typing into a shared terminal): EPERM.
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 5));
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, ArgLow(1)));
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 2, 0));
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 1, 0));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetAllow));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetEperm));
  // personality: queries (0xffffffff) and PER_LINUX (0) only.
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 5));
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, ArgLow(0)));
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 2, 0));
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, 0u, 1, 0));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetEperm));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetAllow));
  p.push_back(Stmt(BPF_RET | BPF_K, kRetAllow));
  return p;
}

// ---------------------------------------------------------------- landlock
// Declared here rather than taken from <linux/landlock.h>: the build host's
// headers may predate the ABI the running kernel has (these values are ABI).
struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI 4
  uint64_t scoped;              // ABI 6
};
struct __attribute__((packed)) LandlockPathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};
constexpr uint32_t kLandlockCreateRulesetVersion = 1U << 0;
constexpr int kLandlockRulePathBeneath = 1;
constexpr uint64_t LANDLOCK_ACCESS_FS_EXECUTE = 1ULL << 0;
constexpr uint64_t LANDLOCK_ACCESS_FS_WRITE_FILE = 1ULL << 1;
constexpr uint64_t LANDLOCK_ACCESS_FS_READ_FILE = 1ULL << 2;
constexpr uint64_t LANDLOCK_ACCESS_FS_READ_DIR = 1ULL << 3;
constexpr uint64_t LANDLOCK_ACCESS_FS_REFER = 1ULL << 13;
constexpr uint64_t LANDLOCK_ACCESS_FS_TRUNCATE = 1ULL << 14;
constexpr uint64_t LANDLOCK_ACCESS_FS_IOCTL_DEV = 1ULL << 15;
constexpr uint64_t LANDLOCK_ACCESS_NET_BIND_TCP = 1ULL << 0;
constexpr uint64_t LANDLOCK_ACCESS_NET_CONNECT_TCP = 1ULL << 1;
constexpr uint64_t LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1ULL << 0;
constexpr uint64_t LANDLOCK_SCOPE_SIGNAL = 1ULL << 1;

int LandlockAbi() {
  long v = syscall(__NR_landlock_create_ruleset, nullptr, 0, kLandlockCreateRulesetVersion);
  return v < 0 ? 0 : static_cast<int>(v);
}

uint64_t LandlockFsAccess(int abi) {
  uint64_t all = (1ULL << 13) - 1;  // ABI 1: EXECUTE .. MAKE_SYM
  if (abi >= 2) all |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) all |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return all;
}

constexpr uint64_t kFsReadAccess =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr uint64_t kFsFileAccess = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                   LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
                                   LANDLOCK_ACCESS_FS_IOCTL_DEV;

// ---------------------------------------------------------------- helpers
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) close(fd);
    fd = f;
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

Napi::Object ErrorResult(Napi::Env env, const char* stage, int err, const std::string& path = std::string()) {
  Napi::Object e = Napi::Object::New(env);
  e.Set("stage", stage);
  e.Set("errno", Napi::Number::New(env, err));
  if (!path.empty()) e.Set("path", path);
  Napi::Object out = Napi::Object::New(env);
  out.Set("error", e);
  return out;
}

const char* StageName(int32_t stage) {
  switch (stage) {
    case kStageSignals: return "signals";
    case kStageProcessGroup: return "process-group";
    case kStageCgroup: return "cgroup";
    case kStageUserNamespace: return "namespaces";
    case kStageIdMaps: return "id-maps";
    case kStageLoopback: return "loopback";
    case kStageRlimit: return "rlimits";
    case kStageStdio: return "stdio";
    case kStageChdir: return "chdir";
    case kStageNoNewPrivs: return "no-new-privs";
    case kStageLandlock: return "landlock";
    case kStageSeccomp: return "seccomp";
    case kStageExec: return "exec";
    case kStageParentDeath: return "parent-death-signal";
    case kStageCloseFds: return "close-fds";
    default: return "unknown";
  }
}

std::vector<std::string> StringArray(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string("sandboxSpawn: ") + name + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s = a.Get(i);
    if (!s.IsString()) throw Napi::TypeError::New(env, std::string("sandboxSpawn: ") + name + " must hold strings");
    std::string t = s.As<Napi::String>().Utf8Value();
    if (t.find('\0') != std::string::npos) throw Napi::TypeError::New(env, std::string("sandboxSpawn: ") + name + " holds a NUL byte");
    out.push_back(std::move(t));
  }
  return out;
}

double NumberOr(Napi::Object o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
}

bool BoolOr(Napi::Object o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}

// ---------------------------------------------------------------- child state
struct RlimitSet {
  int resource;
  rlimit value;
};

struct Plan {
  std::string file;
  std::vector<std::string> argv, envp;
  std::vector<char*> argvp, envpp;
  std::string cwd;
  bool has_cwd = false;
  int stdio_src[3] = {-1, -1, -1};
  std::vector<RlimitSet> rlimits;
  bool userns = false, netns = false, loopback = false;
  std::string uid_map, gid_map;
  int cgroup_procs = -1;
  int ruleset = -1;
  bool seccomp = false;
  std::vector<sock_filter> bpf;
  sock_fprog prog{};
  ifreq lo{};
  pid_t parent = 0;
  int err_pipe = -1;
};

[[noreturn]] void ChildFail(int pipe_fd, int32_t stage, int err) {
  ChildError e{stage, err};
  ssize_t r;
  do {
    r = write(pipe_fd, &e, sizeof e);
  } while (r < 0 && errno == EINTR);
  _exit(127);
}

int WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

int WriteFile(const char* path, const char* data, size_t len) {
  int fd = static_cast<int>(syscall(__NR_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC));
  if (fd < 0) return -1;
  int r = WriteAll(fd, data, len);
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

// Runs in the child between clone3 and execve: raw system calls only.
[[noreturn]] void RunChild(const Plan& p) {
  const int ep = p.err_pipe;
  // 1. Signals: Node ignores SIGPIPE and may block others; the command gets defaults.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);  // reserved realtime signals answer EINVAL: fine
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) ChildFail(ep, kStageSignals, errno);
  // 2. Its own process group: kill() and the end of the leader reach the whole tree
  //    (seccomp below forbids setsid/setpgid, so no descendant leaves it).
  if (setpgid(0, 0) != 0) ChildFail(ep, kStageProcessGroup, errno);
  // 3. cgroup: join before any namespace changes what the write means.
  if (p.cgroup_procs >= 0) {
    if (WriteAll(p.cgroup_procs, "0", 1) != 0) ChildFail(ep, kStageCgroup, errno);
    close(p.cgroup_procs);
  }
  // 4. User (+ network) namespace, identity-mapped to our own uid/gid.
  if (p.userns) {
    int flags = CLONE_NEWUSER | (p.netns ? CLONE_NEWNET : 0);
    if (syscall(__NR_unshare, flags) != 0) ChildFail(ep, kStageUserNamespace, errno);
    if (WriteFile("/proc/self/setgroups", "deny", 4) != 0) ChildFail(ep, kStageIdMaps, errno);
    if (WriteFile("/proc/self/uid_map", p.uid_map.data(), p.uid_map.size()) != 0) ChildFail(ep, kStageIdMaps, errno);
    if (WriteFile("/proc/self/gid_map", p.gid_map.data(), p.gid_map.size()) != 0) ChildFail(ep, kStageIdMaps, errno);
  }
  // 5. 'loopback': bring lo up in the fresh network namespace.
  if (p.loopback) {
    int s = static_cast<int>(syscall(__NR_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (s < 0) ChildFail(ep, kStageLoopback, errno);
    ifreq ifr = p.lo;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) ChildFail(ep, kStageLoopback, errno);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) ChildFail(ep, kStageLoopback, errno);
    close(s);
  }
  // 6. Die with the thread that spawned us (after the credential change of 4, which clears it).
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) ChildFail(ep, kStageParentDeath, errno);
  if (getppid() != p.parent) _exit(127);
  // 7. rlimits.
  for (const RlimitSet& r : p.rlimits) {
    if (syscall(__NR_prlimit64, 0, r.resource, &r.value, nullptr) != 0) ChildFail(ep, kStageRlimit, errno);
  }
  // 8. stdio (sources were placed at fds >= 3 before the clone, or are fd i itself).
  for (int i = 0; i < 3; i++) {
    int src = p.stdio_src[i];
    if (src == i) {
      int fl = fcntl(i, F_GETFD);
      if (fl < 0 || fcntl(i, F_SETFD, fl & ~FD_CLOEXEC) != 0) ChildFail(ep, kStageStdio, errno);
    } else if (dup2(src, i) < 0) {
      ChildFail(ep, kStageStdio, errno);
    }
  }
  // Every other descriptor the process holds (Node's, or those it inherited) closes at exec.
  if (syscall(__NR_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) ChildFail(ep, kStageCloseFds, errno);
  // 9. Working directory (before Landlock: it still needs a read rule to be listed).
  if (p.has_cwd && chdir(p.cwd.c_str()) != 0) ChildFail(ep, kStageChdir, errno);
  // 10. no_new_privs: setuid bits and file capabilities stop counting at exec.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(ep, kStageNoNewPrivs, errno);
  // 11. Landlock.
  if (p.ruleset >= 0) {
    if (syscall(__NR_landlock_restrict_self, p.ruleset, 0) != 0) ChildFail(ep, kStageLandlock, errno);
  }
  // 12. seccomp (last: it forbids some of the calls above).
  if (p.seccomp) {
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p.prog) != 0) ChildFail(ep, kStageSeccomp, errno);
  }
  syscall(__NR_execve, p.file.c_str(), p.argvp.data(), p.envpp.data());
  ChildFail(ep, kStageExec, errno);
}

long Clone3(int* pidfd) {
  clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  return syscall(__NR_clone3, &args, sizeof args);
}

// ---------------------------------------------------------------- parent side
enum KillWhy : int { kNotKilled = 0, kKilledWall = 1, kKilledByCaller = 2 };

struct Child {
  std::mutex mu;
  pid_t pid = -1;
  int pidfd = -1;
  bool reaped = false;
  int why = kNotKilled;
  int64_t wall_ms = 0;
  Napi::ThreadSafeFunction tsfn;
  // Set (under mu) by the thread-safe function's finalizer: the env is gone
  // (a worker ended) or the function was released; it must not be called.
  bool tsfn_gone = false;

  // Caller holds mu. SIGKILL to the group, then to the leader through its pidfd.
  void KillLocked(int reason) {
    if (reaped) return;
    if (why == kNotKilled) why = reason;
    kill(-pid, SIGKILL);
    if (pidfd >= 0) syscall(__NR_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  }
};

struct ExitInfo {
  Napi::ThreadSafeFunction tsfn;
  bool exited = false;
  int code = 0;
  int signal = 0;
  double cpu_ms = 0;
  double max_rss = 0;
  int why = kNotKilled;
  double wall_elapsed_ms = 0;
};

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void Waiter(std::shared_ptr<Child> c) {
  const int64_t start = NowMs();
  const int64_t deadline = c->wall_ms > 0 ? start + c->wall_ms : -1;
  bool wall_done = deadline < 0;
  for (;;) {
    int timeout = -1;
    if (!wall_done) {
      int64_t left = deadline - NowMs();
      if (left <= 0) {
        std::lock_guard<std::mutex> lock(c->mu);
        c->KillLocked(kKilledWall);
        wall_done = true;
      } else {
        timeout = static_cast<int>(left > (1 << 30) ? (1 << 30) : left);
      }
    }
    pollfd pfd{c->pidfd, POLLIN, 0};
    int r = poll(&pfd, 1, timeout);
    if (r > 0) break;
    if (r < 0 && errno != EINTR) break;
  }
  ExitInfo* info = new ExitInfo();
  info->wall_elapsed_ms = static_cast<double>(NowMs() - start);
  int status = 0;
  rusage ru;
  memset(&ru, 0, sizeof ru);
  {
    std::lock_guard<std::mutex> lock(c->mu);
    // The leader is a zombie: its pid (and so its process group id) cannot be
    // reused yet. Whatever it left behind in its group dies with it.
    kill(-c->pid, SIGKILL);
    pid_t got;
    do {
      got = wait4(c->pid, &status, 0, &ru);
    } while (got < 0 && errno == EINTR);
    c->reaped = true;
    close(c->pidfd);
    c->pidfd = -1;
    info->why = c->why;
  }
  if (WIFEXITED(status)) {
    info->exited = true;
    info->code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    info->signal = WTERMSIG(status);
  }
  info->cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
  info->max_rss = static_cast<double>(ru.ru_maxrss) * 1024.0;
  // The report is queued under mu so the finalizer (which takes mu) cannot
  // free the function meanwhile; the callback, on the loop, releases it. After
  // this the waiter never touches the function again.
  std::lock_guard<std::mutex> lock(c->mu);
  if (c->tsfn_gone) {
    delete info;
    return;
  }
  info->tsfn = c->tsfn;
  napi_status st = c->tsfn.NonBlockingCall(info, [](Napi::Env env, Napi::Function cb, ExitInfo* i) {
    std::unique_ptr<ExitInfo> own(i);
    Napi::ThreadSafeFunction fn = i->tsfn;
    Napi::Object o = Napi::Object::New(env);
    o.Set("exited", Napi::Boolean::New(env, i->exited));
    o.Set("code", Napi::Number::New(env, i->code));
    o.Set("signal", Napi::Number::New(env, i->signal));
    o.Set("cpuMs", Napi::Number::New(env, i->cpu_ms));
    o.Set("maxRssBytes", Napi::Number::New(env, i->max_rss));
    o.Set("killed", Napi::Number::New(env, i->why));
    o.Set("wallMs", Napi::Number::New(env, i->wall_elapsed_ms));
    fn.Release();
    cb.Call({o});
  });
  if (st != napi_ok) delete info;
}

struct ChildRef {
  std::shared_ptr<Child> child;
};

// ---------------------------------------------------------------- probe
int ProbeNamespaces() {
  // A throwaway child tries the namespaces a spawn would make; 1 = they work.
  long pid = syscall(__NR_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) return 0;
  if (pid == 0) {
    _exit(syscall(__NR_unshare, CLONE_NEWUSER | CLONE_NEWNET) == 0 ? 0 : 1);
  }
  int status = 0;
  pid_t got;
  do {
    got = waitpid(static_cast<pid_t>(pid), &status, 0);
  } while (got < 0 && errno == EINTR);
  return got > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 1 : 0;
}

Napi::Value SandboxProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static std::once_flag once;
  static int ns = 0;
  std::call_once(once, [] { ns = ProbeNamespaces(); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("platform", "linux");
  o.Set("landlockAbi", Napi::Number::New(env, LandlockAbi()));
  uint32_t action = SECCOMP_RET_KILL_PROCESS;
#ifdef GK_NO_SECCOMP_ARCH
  const bool seccomp = false;
#else
  const bool seccomp = syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
#endif
  o.Set("seccomp", Napi::Boolean::New(env, seccomp));
  o.Set("userNamespaces", Napi::Boolean::New(env, ns == 1));
  o.Set("networkNamespaces", Napi::Boolean::New(env, ns == 1));
  o.Set("uid", Napi::Number::New(env, getuid()));
  o.Set("gid", Napi::Number::New(env, getgid()));
  return o;
}

// ---------------------------------------------------------------- spawn
int HighCloexec(int fd) {
  // Move a descriptor to >= 3 (CLOEXEC) so the child's dup2 onto 0..2 cannot clobber another source.
  if (fd >= 3) return fd;
  int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return n;
}

Napi::Value SandboxSpawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "sandboxSpawn(spec, onExit): expected an object and a function");
  }
  Napi::Object spec = info[0].As<Napi::Object>();
  Plan plan;
  if (!spec.Get("file").IsString()) throw Napi::TypeError::New(env, "sandboxSpawn: file must be a string");
  plan.file = spec.Get("file").As<Napi::String>().Utf8Value();
  if (plan.file.find('\0') != std::string::npos) throw Napi::TypeError::New(env, "sandboxSpawn: file holds a NUL byte");
  plan.argv = StringArray(env, spec.Get("argv"), "argv");
  plan.envp = StringArray(env, spec.Get("envp"), "envp");
  for (std::string& s : plan.argv) plan.argvp.push_back(&s[0]);
  plan.argvp.push_back(nullptr);
  for (std::string& s : plan.envp) plan.envpp.push_back(&s[0]);
  plan.envpp.push_back(nullptr);
  if (spec.Get("cwd").IsString()) {
    plan.cwd = spec.Get("cwd").As<Napi::String>().Utf8Value();
    plan.has_cwd = plan.cwd.find('\0') == std::string::npos;
    if (!plan.has_cwd) throw Napi::TypeError::New(env, "sandboxSpawn: cwd holds a NUL byte");
  }

  // rlimits: [[resourceName, soft, hard], ...] with names limited to this list.
  Napi::Value rl = spec.Get("rlimits");
  if (rl.IsArray()) {
    Napi::Array a = rl.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsArray() || e.As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(env, "sandboxSpawn: rlimits entries are [name, soft, hard]");
      Napi::Array t = e.As<Napi::Array>();
      std::string name = t.Get(0u).ToString().Utf8Value();
      double soft = t.Get(1u).ToNumber().DoubleValue(), hard = t.Get(2u).ToNumber().DoubleValue();
      if (!(soft >= 0 && hard >= soft && hard <= 9007199254740991.0)) throw Napi::RangeError::New(env, "sandboxSpawn: bad rlimit value");
      int res;
      if (name == "cpu") res = RLIMIT_CPU;
      else if (name == "as") res = RLIMIT_AS;
      else if (name == "data") res = RLIMIT_DATA;
      else if (name == "nproc") res = RLIMIT_NPROC;
      else if (name == "nofile") res = RLIMIT_NOFILE;
      else if (name == "fsize") res = RLIMIT_FSIZE;
      else if (name == "core") res = RLIMIT_CORE;
      else throw Napi::RangeError::New(env, "sandboxSpawn: unknown rlimit " + name);
      plan.rlimits.push_back({res, {static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)}});
    }
  }
  plan.userns = BoolOr(spec, "userns", false);
  plan.netns = BoolOr(spec, "netns", false);
  plan.loopback = BoolOr(spec, "loopback", false);
  if ((plan.netns || plan.loopback) && !plan.userns) throw Napi::TypeError::New(env, "sandboxSpawn: netns needs userns");
  if (plan.loopback && !plan.netns) throw Napi::TypeError::New(env, "sandboxSpawn: loopback needs netns");
  plan.uid_map = std::to_string(getuid()) + " " + std::to_string(getuid()) + " 1\n";
  plan.gid_map = std::to_string(getgid()) + " " + std::to_string(getgid()) + " 1\n";
  strncpy(plan.lo.ifr_name, "lo", IFNAMSIZ - 1);
  plan.seccomp = BoolOr(spec, "seccomp", true);
#ifdef GK_NO_SECCOMP_ARCH
  if (plan.seccomp) return ErrorResult(env, "seccomp", ENOSYS);
#endif
  if (plan.seccomp) {
    plan.bpf = BuildSeccompFilter();
    plan.prog.len = static_cast<unsigned short>(plan.bpf.size());
    plan.prog.filter = plan.bpf.data();
  }
  const double wall = NumberOr(spec, "wallMs", 0);

  // Descriptors prepared before the clone; every one is CLOEXEC and closed here on return.
  Fd cgroup_procs, ruleset, err_r, err_w, devnull;
  Fd pipe_parent[3], pipe_child[3];
  if (spec.Get("cgroupProcs").IsString()) {
    std::string path = spec.Get("cgroupProcs").As<Napi::String>().Utf8Value();
    cgroup_procs.reset(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (cgroup_procs.fd < 0) return ErrorResult(env, "cgroup", errno, path);
    plan.cgroup_procs = cgroup_procs.fd;
  }
  Napi::Value ll = spec.Get("landlock");
  if (ll.IsObject()) {
    Napi::Object l = ll.As<Napi::Object>();
    const int abi = LandlockAbi();
    if (abi < 1) return ErrorResult(env, "landlock", ENOSYS);
    LandlockRulesetAttr attr;
    memset(&attr, 0, sizeof attr);
    const bool fs = BoolOr(l, "fs", false);
    const uint64_t all_fs = LandlockFsAccess(abi);
    if (fs) attr.handled_access_fs = all_fs;
    // The smallest struct size that carries the fields in use, so older kernels accept it.
    size_t attr_size = 8;
    if (BoolOr(l, "net", false)) {
      if (abi < 4) return ErrorResult(env, "landlock-net", ENOSYS);
      attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
      attr_size = 16;
    }
    if (BoolOr(l, "scopeSignal", false)) attr.scoped |= LANDLOCK_SCOPE_SIGNAL;
    if (BoolOr(l, "scopeAbstractUnix", false)) attr.scoped |= LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET;
    if (attr.scoped != 0) {
      if (abi < 6) return ErrorResult(env, "landlock-scope", ENOSYS);
      attr_size = 24;
    }
    ruleset.reset(static_cast<int>(syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0)));
    if (ruleset.fd < 0) return ErrorResult(env, "landlock", errno);
    if (fs) {
      Napi::Value rules = l.Get("rules");
      if (!rules.IsArray()) throw Napi::TypeError::New(env, "sandboxSpawn: landlock.rules must be an array");
      Napi::Array ra = rules.As<Napi::Array>();
      for (uint32_t i = 0; i < ra.Length(); i++) {
        Napi::Object r = ra.Get(i).As<Napi::Object>();
        std::string path = r.Get("path").ToString().Utf8Value();
        const bool write = BoolOr(r, "write", false);
        Fd dir(open(path.c_str(), O_PATH | O_CLOEXEC));
        if (dir.fd < 0) return ErrorResult(env, "landlock-path", errno, path);
        struct stat st;
        if (fstat(dir.fd, &st) != 0) return ErrorResult(env, "landlock-path", errno, path);
        uint64_t access = write ? all_fs : (kFsReadAccess & all_fs);
        if (!S_ISDIR(st.st_mode)) access &= kFsFileAccess;
        access &= all_fs;
        LandlockPathBeneathAttr pb;
        memset(&pb, 0, sizeof pb);
        pb.allowed_access = access;
        pb.parent_fd = dir.fd;
        if (syscall(__NR_landlock_add_rule, ruleset.fd, kLandlockRulePathBeneath, &pb, 0) != 0) {
          return ErrorResult(env, "landlock-rule", errno, path);
        }
      }
    }
    plan.ruleset = ruleset.fd;
  }

  // stdio: -1 pipe, -2 /dev/null, >= 0 a descriptor of ours to give as is.
  Napi::Value sv = spec.Get("stdio");
  if (!sv.IsArray() || sv.As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(env, "sandboxSpawn: stdio must be [in, out, err]");
  Napi::Array sa = sv.As<Napi::Array>();
  for (int i = 0; i < 3; i++) {
    const int mode = sa.Get(static_cast<uint32_t>(i)).ToNumber().Int32Value();
    if (mode == -1) {
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) return ErrorResult(env, "stdio", errno);
      // stdin: the child reads fds[0]; stdout/stderr: the child writes fds[1].
      if (i == 0) {
        pipe_child[i].reset(fds[0]);
        pipe_parent[i].reset(fds[1]);
      } else {
        pipe_child[i].reset(fds[1]);
        pipe_parent[i].reset(fds[0]);
      }
      pipe_child[i].fd = HighCloexec(pipe_child[i].fd);
      if (pipe_child[i].fd < 0) return ErrorResult(env, "stdio", errno);
      plan.stdio_src[i] = pipe_child[i].fd;
    } else if (mode == -2) {
      if (devnull.fd < 0) {
        devnull.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
        if (devnull.fd < 0) return ErrorResult(env, "stdio", errno);
        devnull.fd = HighCloexec(devnull.fd);
        if (devnull.fd < 0) return ErrorResult(env, "stdio", errno);
      }
      plan.stdio_src[i] = devnull.fd;
    } else if (mode >= 0) {
      if (mode == i) {
        plan.stdio_src[i] = i;
      } else {
        pipe_child[i].reset(fcntl(mode, F_DUPFD_CLOEXEC, 3));
        if (pipe_child[i].fd < 0) return ErrorResult(env, "stdio", errno);
        plan.stdio_src[i] = pipe_child[i].fd;
      }
    } else {
      throw Napi::RangeError::New(env, "sandboxSpawn: bad stdio entry");
    }
  }
  {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return ErrorResult(env, "pipe", errno);
    err_r.reset(fds[0]);
    err_w.reset(fds[1]);
    plan.err_pipe = err_w.fd;
  }
  plan.parent = getpid();

  auto child = std::make_shared<Child>();
  child->wall_ms = wall > 0 ? static_cast<int64_t>(wall) : 0;
  int pidfd = -1;
  long pid = Clone3(&pidfd);
  if (pid == 0) RunChild(plan);
  if (pid < 0) return ErrorResult(env, "clone", errno);
  err_w.reset();
  for (auto& f : pipe_child) f.reset();
  // EOF: execve succeeded (the pipe closed on exec). Data: the stage that failed.
  ChildError ce{0, 0};
  ssize_t n;
  do {
    n = read(err_r.fd, &ce, sizeof ce);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    int status;
    while (waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
    }
    close(pidfd);
    return ErrorResult(env, StageName(n == sizeof ce ? ce.stage : 0), n == sizeof ce ? ce.err : EIO);
  }
  child->pid = static_cast<pid_t>(pid);
  child->pidfd = pidfd;
  child->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "guardkernel-sandbox-exit", 0, 1,
                                               [](Napi::Env, std::shared_ptr<Child>* c) {
                                                 {
                                                   std::lock_guard<std::mutex> lock((*c)->mu);
                                                   (*c)->tsfn_gone = true;
                                                 }
                                                 delete c;
                                               },
                                               new std::shared_ptr<Child>(child));
  std::thread(Waiter, child).detach();

  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, static_cast<double>(pid)));
  Napi::Array fds = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; i++) fds.Set(i, Napi::Number::New(env, pipe_parent[i].fd >= 0 ? pipe_parent[i].release() : -1));
  out.Set("fds", fds);
  auto* ref = new ChildRef{child};
  out.Set("handle", Napi::External<ChildRef>::New(env, ref, [](Napi::Env, ChildRef* r) { delete r; }));
  return out;
}

Napi::Value SandboxKill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsExternal() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "sandboxKill(handle, why)");
  ChildRef* ref = info[0].As<Napi::External<ChildRef>>().Data();
  const int why = info[1].As<Napi::Number>().Int32Value() == kKilledWall ? kKilledWall : kKilledByCaller;
  std::lock_guard<std::mutex> lock(ref->child->mu);
  const bool live = !ref->child->reaped;
  ref->child->KillLocked(why);
  return Napi::Boolean::New(env, live);
}

}  // namespace

void RegisterProcessSandboxFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("sandboxProbe", Napi::Function::New(env, SandboxProbe, "sandboxProbe"));
  exports.Set("sandboxSpawn", Napi::Function::New(env, SandboxSpawn, "sandboxSpawn"));
  exports.Set("sandboxKill", Napi::Function::New(env, SandboxKill, "sandboxKill"));
}

}  // namespace gk

#endif  // __linux__
