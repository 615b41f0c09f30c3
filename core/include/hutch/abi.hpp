// The plugin ABI: a descriptor read first, a versioned and type-checked factory.
//
// A plugin writes one line:
//   HUTCH_PLUGIN(hutch::StorageDriver, "vfs", "0.1.0", make_vfs_driver);
// where  std::unique_ptr<hutch::StorageDriver> make_vfs_driver(const hutch::PluginContext&);
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>

#include <boost/dll/alias.hpp>

#include "hutch/context.hpp"

#ifndef HUTCH_BUILD_TAG
#define HUTCH_BUILD_TAG "unknown"
#endif

namespace hutch {

// Bump on any change to the interfaces, the context or the descriptor.
inline constexpr std::uint32_t kAbiVersion = 5;  // 2: StorageDriver grew probe, changes, export, usage; 3: RuntimeBackend::exec; 4: ImageTransport sources and destinations; 5: NetworkBackend ports, attachments, user networks
inline constexpr std::uint32_t kDescriptorMagic = 0x48544348;  // "HTCH"

// Its first two fields never move, so any version of it can be read and refused.
struct PluginDescriptor {
  std::uint32_t magic;
  std::uint32_t abi_version;
  const char* family;
  const char* name;
  const char* version;
  const char* build_tag;
};

template <typename Interface>
using PluginFactory = std::unique_ptr<Interface>(const PluginContext&);

inline constexpr const char* kDescriptorSymbol = "hutch_plugin_descriptor";
inline constexpr const char* kFactorySymbol = "hutch_plugin_factory_v1";

}  // namespace hutch

#define HUTCH_PLUGIN_WITH_ABI(Interface, Name, Version, Factory, Abi)                         \
  static_assert(std::is_same_v<decltype(Factory), ::hutch::PluginFactory<Interface>>,          \
                "HUTCH_PLUGIN: the factory must be "                                           \
                "std::unique_ptr<Interface> Factory(const hutch::PluginContext&)");            \
  namespace {                                                                                  \
  const ::hutch::PluginDescriptor hutch_plugin_descriptor_instance{                            \
      ::hutch::kDescriptorMagic, (Abi), Interface::kFamily, (Name), (Version), HUTCH_BUILD_TAG}; \
  }                                                                                            \
  BOOST_DLL_ALIAS(hutch_plugin_descriptor_instance, hutch_plugin_descriptor)                   \
  BOOST_DLL_ALIAS(Factory, hutch_plugin_factory_v1)

#define HUTCH_PLUGIN(Interface, Name, Version, Factory) \
  HUTCH_PLUGIN_WITH_ABI(Interface, Name, Version, Factory, ::hutch::kAbiVersion)
