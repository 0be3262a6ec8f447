// peerCredentials(fd): who is at the other end of a connected Unix-domain
// socket, as the kernel saw it at connect time (SO_PEERCRED on Linux,
// getpeereid on macOS and the BSDs). The IPC server keys its roles, its
// failed-auth lockout and its connection rate per client by this uid, so a
// client cannot shed its history by reconnecting.
#pragma once
#include <napi.h>

namespace gk {

void RegisterPeerCredentialFunctions(Napi::Env env, Napi::Object exports);

}  // namespace gk
