// libarchive, opened the first time a layer is read or written rather than linked: it pulls
// in libxml2, ICU and six compression libraries, about a millisecond of loading that every
// command (a `hutch run` among them) would pay for nothing. Each call below resolves its
// symbol once (dlopen + dlsym) and then calls it directly; the declarations come from
// libarchive's own headers, so the types are checked as before.
#pragma once

#include <archive.h>
#include <archive_entry.h>

namespace hutch::lazy_archive {

// The address of `name` in libarchive; throws hutch::Error naming libarchive when it is
// missing (Debian: libarchive13).
void* symbol(const char* name);

}  // namespace hutch::lazy_archive

#define HUTCH_LAZY_ARCHIVE(name)                                                  \
  namespace hutch::lazy_archive {                                                 \
  template <typename... Args>                                                     \
  inline auto name(Args... args) {                                                \
    static auto* const fn = reinterpret_cast<decltype(&::name)>(symbol(#name));   \
    return fn(args...);                                                           \
  }                                                                               \
  }

HUTCH_LAZY_ARCHIVE(archive_entry_atime)
HUTCH_LAZY_ARCHIVE(archive_entry_atime_is_set)
HUTCH_LAZY_ARCHIVE(archive_entry_atime_nsec)
HUTCH_LAZY_ARCHIVE(archive_entry_copy_stat)
HUTCH_LAZY_ARCHIVE(archive_entry_filetype)
HUTCH_LAZY_ARCHIVE(archive_entry_free)
HUTCH_LAZY_ARCHIVE(archive_entry_gid)
HUTCH_LAZY_ARCHIVE(archive_entry_hardlink)
HUTCH_LAZY_ARCHIVE(archive_entry_mtime)
HUTCH_LAZY_ARCHIVE(archive_entry_mtime_is_set)
HUTCH_LAZY_ARCHIVE(archive_entry_mtime_nsec)
HUTCH_LAZY_ARCHIVE(archive_entry_new)
HUTCH_LAZY_ARCHIVE(archive_entry_pathname)
HUTCH_LAZY_ARCHIVE(archive_entry_perm)
HUTCH_LAZY_ARCHIVE(archive_entry_rdev)
HUTCH_LAZY_ARCHIVE(archive_entry_set_filetype)
HUTCH_LAZY_ARCHIVE(archive_entry_set_hardlink)
HUTCH_LAZY_ARCHIVE(archive_entry_set_pathname)
HUTCH_LAZY_ARCHIVE(archive_entry_set_perm)
HUTCH_LAZY_ARCHIVE(archive_entry_set_size)
HUTCH_LAZY_ARCHIVE(archive_entry_set_symlink)
HUTCH_LAZY_ARCHIVE(archive_entry_symlink)
HUTCH_LAZY_ARCHIVE(archive_entry_uid)
HUTCH_LAZY_ARCHIVE(archive_entry_xattr_add_entry)
HUTCH_LAZY_ARCHIVE(archive_entry_xattr_next)
HUTCH_LAZY_ARCHIVE(archive_entry_xattr_reset)
HUTCH_LAZY_ARCHIVE(archive_error_string)
HUTCH_LAZY_ARCHIVE(archive_read_data)
HUTCH_LAZY_ARCHIVE(archive_read_data_block)
HUTCH_LAZY_ARCHIVE(archive_read_free)
HUTCH_LAZY_ARCHIVE(archive_read_new)
HUTCH_LAZY_ARCHIVE(archive_read_next_header)
HUTCH_LAZY_ARCHIVE(archive_read_open_fd)
HUTCH_LAZY_ARCHIVE(archive_read_open_filename)
HUTCH_LAZY_ARCHIVE(archive_read_support_filter_all)
HUTCH_LAZY_ARCHIVE(archive_read_support_format_raw)
HUTCH_LAZY_ARCHIVE(archive_read_support_format_tar)
HUTCH_LAZY_ARCHIVE(archive_write_close)
HUTCH_LAZY_ARCHIVE(archive_write_data)
HUTCH_LAZY_ARCHIVE(archive_write_free)
HUTCH_LAZY_ARCHIVE(archive_write_header)
HUTCH_LAZY_ARCHIVE(archive_write_new)
HUTCH_LAZY_ARCHIVE(archive_write_open)
HUTCH_LAZY_ARCHIVE(archive_write_set_bytes_in_last_block)
HUTCH_LAZY_ARCHIVE(archive_write_set_format_pax_restricted)
HUTCH_LAZY_ARCHIVE(archive_write_set_format_raw)
HUTCH_LAZY_ARCHIVE(archive_write_add_filter_gzip)
HUTCH_LAZY_ARCHIVE(archive_write_add_filter_zstd)
HUTCH_LAZY_ARCHIVE(archive_write_set_filter_option)
HUTCH_LAZY_ARCHIVE(archive_write_open_fd)
