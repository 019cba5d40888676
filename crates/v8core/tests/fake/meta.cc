// A stand-in for node's postmortem metadata, built by the tests (tests/it/fake.rs) as a PIE
// executable or as a `libnode.so`: a few `v8dbg_*` constants as V8 exports them (`int` in
// .data or, when 0, .bss) and `nodedbg_*` values that a static constructor fills at startup,
// as Node's do. TAGGED_SIZE and MAP_TYPE are set on the command line; link with -rdynamic,
// as node is, so that an executable exports them.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define EXPORT __attribute__((used, visibility("default")))

extern "C" {

EXPORT int v8dbg_TaggedSize = TAGGED_SIZE;
EXPORT int v8dbg_SmiShiftSize = 31;
EXPORT int v8dbg_type_Map__MAP_TYPE = MAP_TYPE;
EXPORT int v8dbg_type_JSObject__JS_OBJECT_TYPE = 1057;
EXPORT int v8dbg_class_Map__instance_type__uint16_t = 12;
EXPORT int v8dbg_class_Map__prototype__Object = 24;
EXPORT int v8dbg_class_Map__prototype__Tagged_HeapObject_ = 24;
EXPORT int v8dbg_class_JSFunction__context__Context = 40;
EXPORT int v8dbg_class_JSFunction__context__Tagged_Context_ = 32;
EXPORT int v8dbg_frametype_EntryFrame = 1;
EXPORT int v8dbg_off_fp_function = -16;
EXPORT int v8dbg_parent_Map__HeapObject = 0;
EXPORT uintptr_t nodedbg_offset_Environment__req_wrap_queue___Environment_ReqWrapQueue = 0;
EXPORT int nodedbg_const_BaseObject__kInternalFieldCount__int = 0;

__attribute__((constructor)) static void fill_node_metadata() {
    nodedbg_offset_Environment__req_wrap_queue___Environment_ReqWrapQueue = 2328;
    nodedbg_const_BaseObject__kInternalFieldCount__int = 2;
}

EXPORT void fake_node_start() {}
}

#ifdef WITH_MAIN
int main() {
    fake_node_start();
    std::puts("ready");
    std::fflush(stdout);
    return std::system("sleep 600");
}
#endif
