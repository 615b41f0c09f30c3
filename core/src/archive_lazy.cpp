#include "archive_lazy.hpp"

#include <dlfcn.h>

#include "hutch/error.hpp"

namespace hutch::lazy_archive {

void* symbol(const char* name) {
  static void* lib = [] {
    void* h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    return h ? h : dlopen("libarchive.so", RTLD_NOW | RTLD_LOCAL);
  }();
  if (!lib)
    throw Error(Errc::kSystem, std::string("cannot load libarchive, which reads and writes layers: ") + dlerror() +
                                   " (Debian: apt-get install libarchive13)");
  void* p = dlsym(lib, name);
  if (!p) throw Error(Errc::kSystem, std::string("libarchive has no ") + name + ": " + dlerror());
  return p;
}

}  // namespace hutch::lazy_archive
