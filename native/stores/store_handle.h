// Opaque handles for native stores (decision cache, replay detector).
//
// A handle is a JS External holding a shared_ptr to its store. It is type
// tagged, so a foreign External cannot be passed off as one; close() drops the
// reference (later calls throw ERR_CLOSED); the GC finalizer drops it too. A
// store lives while any handle in any thread refers to it.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "args.h"

namespace gk {

template <typename Store>
struct StoreHandle {
  std::shared_ptr<Store> store;
};

template <typename Store>
Napi::Value WrapStore(Napi::Env env, std::shared_ptr<Store> store, const napi_type_tag* tag) {
  auto* handle = new StoreHandle<Store>{std::move(store)};
  Napi::External<StoreHandle<Store>> ext = Napi::External<StoreHandle<Store>>::New(
      env, handle, [](Napi::Env, StoreHandle<Store>* h) { delete h; });
  NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, ext, tag), Napi::Value());
  return ext;
}

template <typename Store>
StoreHandle<Store>* HandleArg(const Napi::CallbackInfo& info, const napi_type_tag* tag, const char* what) {
  napi_env env = info.Env();
  napi_value v = info[0];
  bool ok = false;
  if (napi_check_object_type_tag(env, v, tag, &ok) != napi_ok || !ok) {
    std::string msg = std::string("Expected a ") + what + " handle";
    ThrowTypeError(info.Env(), msg.c_str());
  }
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_value_external(env, v, &data), nullptr);
  return static_cast<StoreHandle<Store>*>(data);
}

// The live store behind a handle argument, or ERR_CLOSED.
template <typename Store>
Store& LiveStore(const Napi::CallbackInfo& info, const napi_type_tag* tag, const char* what) {
  StoreHandle<Store>* h = HandleArg<Store>(info, tag, what);
  if (!h->store) ThrowClosed(info.Env(), what);
  return *h->store;
}

// Process-wide registry of named stores, shared by every worker_thread. It
// holds weak references: the store is freed when the last handle goes.
template <typename Store>
class SharedRegistry {
 public:
  // The live store named `name`, or a new one from `make()`. `compatible`
  // decides whether an existing store can serve these options.
  std::shared_ptr<Store> Get(const std::string& name, const std::function<std::shared_ptr<Store>()>& make,
                             const std::function<bool(const Store&)>& compatible, bool* mismatch) {
    std::lock_guard<std::mutex> lock(mu_);
    *mismatch = false;
    auto it = stores_.find(name);
    if (it != stores_.end()) {
      if (std::shared_ptr<Store> existing = it->second.lock()) {
        if (!compatible(*existing)) {
          *mismatch = true;
          return nullptr;
        }
        return existing;
      }
    }
    std::shared_ptr<Store> created = make();
    stores_[name] = created;
    // Drop registry slots whose stores are gone, so names do not accumulate.
    for (auto i = stores_.begin(); i != stores_.end();) {
      i = i->second.expired() ? stores_.erase(i) : std::next(i);
    }
    return created;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<Store>> stores_;
};

}  // namespace gk
