// Atomic output of a whole directory (a bundle): the files appear together under the final name,
// or the old directory stays as it was. The temporary naming and the removal of temporaries left by
// killed runs are atomic_file.h's, so files and directories follow one set of rules.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace tilescale {

// The kind of directory written or read, for messages and for deciding whether an existing
// directory may be replaced.
struct DirKind {
  // "bundle": names the directory in messages.
  std::string noun;
  // "a tilescale bundle": what an existing directory must be to be replaced.
  std::string description;
  // How is_own() recognises one, for the refusal message.
  std::string rule;
  // True if the existing non-empty directory at path is of this kind. An empty directory may always
  // be replaced; anything else is refused.
  std::function<bool(const std::string& path)> is_own;
};

// dir without trailing slashes. Throws InputError for a name no sibling can be made for ("", ".",
// "..", "/" or a path ending in one of them).
std::string normalize_dir_name(const std::string& dir, const DirKind& kind);

// One file of an atomic directory: its name inside the directory and its bytes (not owned).
struct DirFile {
  std::string name;                    // file name inside the directory
  const std::string* bytes = nullptr;  // its content, owned by the caller
};

// Writes `files`, in order, into the sibling atomic_temp_path(dir), fsyncing each file and the
// directory, then renames the temporary onto dir. An existing directory (empty, or of this kind) is
// swapped out with renameat2(RENAME_EXCHANGE) and removed; on a file system without it, it is moved
// aside to "<dir>.old.<pid>[.<n>]" first (never reusing such a name: after a crash it may hold the
// only copy). So a reader or a killed run sees the old directory or the complete new one, never a
// mix. Throws InputError naming dir (or the file inside it) if dir is something else than an empty
// directory or one of this kind, or on any I/O failure; nothing is left behind then.
void write_dir_atomic(const std::string& dir, const std::vector<DirFile>& files,
                      const DirKind& kind);

// The files of one directory, read through one open handle, so that a writer swapping in a new
// directory meanwhile cannot mix the files of two versions into one read.
class DirReader {
 public:
  // Opens normalize_dir_name(dir); throws InputError naming it if it cannot be opened.
  DirReader(const std::string& dir, const DirKind& kind);
  ~DirReader();
  DirReader(const DirReader&) = delete;
  DirReader& operator=(const DirReader&) = delete;

  const std::string& path() const { return path_; }  // the normalized directory name
  std::string path_of(const std::string& name) const { return path_ + "/" + name; }
  // The whole regular file `name`; throws InputError naming path_of(name) if it is missing, not a
  // regular file or unreadable.
  std::string read(const std::string& name) const;

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace tilescale
