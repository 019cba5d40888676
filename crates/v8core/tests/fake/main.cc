// The executable beside the `libnode.so` build of meta.cc: the metadata is in the library.
#include <cstdio>
#include <cstdlib>

extern "C" void fake_node_start();

int main() {
    fake_node_start();
    std::puts("ready");
    std::fflush(stdout);
    return std::system("sleep 600");
}
