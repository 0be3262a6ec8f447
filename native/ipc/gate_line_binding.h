// parseGateLine and gateLineMemoStats on the core addon's exports.
#pragma once
#include <napi.h>

namespace gk {
void RegisterGateLineFunctions(Napi::Env env, Napi::Object exports);
}
