// Block envelopes on the CPU in one native call: every block sealed or opened
// with OpenSSL's EVP AEADs (the OpenSSL inside Node, whose symbols Node
// exports to addons), one cipher context for the whole call.
#pragma once
#include <napi.h>

namespace gk {

void RegisterAeadBlockFunctions(Napi::Env env, Napi::Object exports);

}  // namespace gk
