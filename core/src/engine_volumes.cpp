// Placeholder until the volumes branch lands.
#include "hutch/engine.hpp"
#include "hutch/error.hpp"

namespace hutch {
std::filesystem::path Engine::volume_for_run(const std::string& name, const std::filesystem::path&, const std::string&) {
  std::filesystem::path p = paths_.store_root / "volumes" / name / "_data";
  make_dirs(p, 0755);
  return p;
}
void Engine::remove_volume(const std::string& name, bool) { remove_tree(paths_.store_root / "volumes" / name); }
}  // namespace hutch
