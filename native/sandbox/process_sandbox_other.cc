// The process sandbox where it is not Linux.
// - macOS: sandboxProbe only; lib/sandbox/darwin.ts runs sandbox-exec with a
//   generated profile and the shell's ulimit (no native spawn).
// - Windows: a Job Object (job memory, per-process CPU time, active
//   processes, kill on close) that lib/sandbox/windows.ts assigns the child
//   to. NOT BUILT OR RUN on the development machine (Linux); built and tested
//   by the prebuild workflow's Windows job.
#if !defined(__linux__)

#include "sandbox/process_sandbox.h"

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#endif

namespace gk {
namespace {

Napi::Value SandboxProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#if defined(__APPLE__)
  o.Set("platform", "darwin");
#elif defined(_WIN32)
  o.Set("platform", "win32");
  o.Set("jobObjects", Napi::Boolean::New(env, true));
#else
  o.Set("platform", "other");
#endif
  return o;
}

#if defined(_WIN32)
struct Job {
  HANDLE handle = nullptr;
};

Job* JobOf(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a job handle");
  Job* job = info[0].As<Napi::External<Job>>().Data();
  if (job->handle == nullptr) throw Napi::Error::New(info.Env(), "job handle is closed");
  return job;
}

Napi::Object WinError(Napi::Env env, const char* stage) {
  const DWORD code = GetLastError();
  Napi::Object e = Napi::Object::New(env);
  e.Set("stage", stage);
  e.Set("errno", Napi::Number::New(env, static_cast<double>(code)));
  Napi::Object out = Napi::Object::New(env);
  out.Set("error", e);
  return out;
}

// sandboxJobCreate({ memoryBytes?, cpuMs?, processes? }) -> { handle } | { error }
Napi::Value SandboxJobCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "sandboxJobCreate(limits)");
  Napi::Object limits = info[0].As<Napi::Object>();
  HANDLE h = CreateJobObjectW(nullptr, nullptr);
  if (h == nullptr) return WinError(env, "CreateJobObject");
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  ZeroMemory(&li, sizeof li);
  li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
  if (limits.Get("memoryBytes").IsNumber()) {
    li.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
    li.JobMemoryLimit = static_cast<SIZE_T>(limits.Get("memoryBytes").As<Napi::Number>().DoubleValue());
  }
  if (limits.Get("cpuMs").IsNumber()) {
    li.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_TIME;
    // 100-nanosecond units.
    li.BasicLimitInformation.PerProcessUserTimeLimit.QuadPart = static_cast<LONGLONG>(limits.Get("cpuMs").As<Napi::Number>().DoubleValue() * 10000.0);
  }
  if (limits.Get("processes").IsNumber()) {
    li.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
    li.BasicLimitInformation.ActiveProcessLimit = static_cast<DWORD>(limits.Get("processes").As<Napi::Number>().DoubleValue());
  }
  if (!SetInformationJobObject(h, JobObjectExtendedLimitInformation, &li, sizeof li)) {
    Napi::Object err = WinError(env, "SetInformationJobObject");
    CloseHandle(h);
    return err;
  }
  Job* job = new Job();
  job->handle = h;
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", Napi::External<Job>::New(env, job, [](Napi::Env, Job* j) {
    if (j->handle != nullptr) CloseHandle(j->handle);  // kill on close: nothing outlives the handle
    delete j;
  }));
  return out;
}

// sandboxJobAssign(job, pid) -> true | { error }
Napi::Value SandboxJobAssign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Job* job = JobOf(info);
  if (info.Length() != 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "sandboxJobAssign(job, pid)");
  const DWORD pid = static_cast<DWORD>(info[1].As<Napi::Number>().DoubleValue());
  HANDLE p = OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, FALSE, pid);
  if (p == nullptr) return WinError(env, "OpenProcess");
  const BOOL ok = AssignProcessToJobObject(job->handle, p);
  CloseHandle(p);
  if (!ok) return WinError(env, "AssignProcessToJobObject");
  return Napi::Boolean::New(env, true);
}

// sandboxJobStats(job) -> { cpuMs, peakJobMemoryBytes, activeProcesses, totalProcesses }
Napi::Value SandboxJobStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Job* job = JobOf(info);
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc;
  ZeroMemory(&acc, sizeof acc);
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  ZeroMemory(&li, sizeof li);
  Napi::Object o = Napi::Object::New(env);
  if (QueryInformationJobObject(job->handle, JobObjectBasicAccountingInformation, &acc, sizeof acc, nullptr)) {
    o.Set("cpuMs", Napi::Number::New(env, static_cast<double>(acc.TotalUserTime.QuadPart + acc.TotalKernelTime.QuadPart) / 10000.0));
    o.Set("activeProcesses", Napi::Number::New(env, static_cast<double>(acc.ActiveProcesses)));
    o.Set("totalProcesses", Napi::Number::New(env, static_cast<double>(acc.TotalProcesses)));
  }
  if (QueryInformationJobObject(job->handle, JobObjectExtendedLimitInformation, &li, sizeof li, nullptr)) {
    o.Set("peakJobMemoryBytes", Napi::Number::New(env, static_cast<double>(li.PeakJobMemoryUsed)));
  }
  return o;
}

// sandboxJobKill(job): every process in the job ends.
Napi::Value SandboxJobKill(const Napi::CallbackInfo& info) {
  Job* job = JobOf(info);
  return Napi::Boolean::New(info.Env(), TerminateJobObject(job->handle, 1) != 0);
}
#endif  // _WIN32

}  // namespace

void RegisterProcessSandboxFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("sandboxProbe", Napi::Function::New(env, SandboxProbe, "sandboxProbe"));
#if defined(_WIN32)
  exports.Set("sandboxJobCreate", Napi::Function::New(env, SandboxJobCreate, "sandboxJobCreate"));
  exports.Set("sandboxJobAssign", Napi::Function::New(env, SandboxJobAssign, "sandboxJobAssign"));
  exports.Set("sandboxJobStats", Napi::Function::New(env, SandboxJobStats, "sandboxJobStats"));
  exports.Set("sandboxJobKill", Napi::Function::New(env, SandboxJobKill, "sandboxJobKill"));
#endif
}

}  // namespace gk

#endif  // !__linux__
