// A Node-API addon with a native leak, for leakhound's native tracking (tests and README).
//
// - `remember(id)` keeps a 4 KB malloc'd record per call in a global list, never freed: the
//   leak, as a session cache in a C++ library would have it.
// - `scratch(id)` mallocs the same record, uses it and frees it: the clean twin.
// - `retain(n)` keeps n C++ `std::string`s of 1 KB (operator new, through libstdc++).
//
// Built as node-gyp builds addons, plus frame pointers:
//   g++ -O3 -fno-omit-frame-pointer -fPIC -shared -I/usr/include/node addon.cc -o addon.node
#include <node_api.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Record {
  char payload[4096 - 16];
  long id;
  Record *next;
};

Record *sessions = nullptr;
std::vector<std::string> *strings = new std::vector<std::string>();

// Kept out of line, as a real library's entry point would be.
__attribute__((noinline)) Record *CreateSessionRecord(long id) {
  Record *r = static_cast<Record *>(std::malloc(sizeof(Record)));
  std::memset(r->payload, static_cast<int>(id), sizeof(r->payload));
  r->id = id;
  return r;
}

__attribute__((noinline)) long UseScratchRecord(long id) {
  Record *r = CreateSessionRecord(id);
  long sum = r->payload[id % sizeof(r->payload)];
  std::free(r);
  return sum;
}

long ArgId(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t id = 0;
  if (argc > 0) napi_get_value_int64(env, argv[0], &id);
  return static_cast<long>(id);
}

napi_value Remember(napi_env env, napi_callback_info info) {
  Record *r = CreateSessionRecord(ArgId(env, info));
  r->next = sessions;
  sessions = r;
  napi_value out;
  napi_create_int64(env, r->id, &out);
  return out;
}

napi_value Scratch(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_create_int64(env, UseScratchRecord(ArgId(env, info)), &out);
  return out;
}

napi_value Retain(napi_env env, napi_callback_info info) {
  long n = ArgId(env, info);
  for (long i = 0; i < n; i++) strings->push_back(std::string(1024, 'x'));
  napi_value out;
  napi_create_int64(env, static_cast<int64_t>(strings->size()), &out);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"remember", nullptr, Remember, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"scratch", nullptr, Scratch, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"retain", nullptr, Retain, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
