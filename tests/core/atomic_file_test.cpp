// AtomicFile and read_file: the final path holds the old content or the complete new content, never
// a partial file, and no temporary file outlives the writer.
#include "tilescale/core/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "support/expect_input_error.h"
#include "support/test_files.h"

namespace tilescale {
namespace {

using test::exists;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;
using ::testing::ElementsAre;

// The file name of the temporary of `name` (a file in the current folder) for process pid.
std::string tmp_name(const std::string& name, pid_t pid = ::getpid()) {
  return std::filesystem::path(atomic_temp_path(name, pid)).filename().string();
}

// The pid of a process that has exited and been reaped, so it no longer exists.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

TEST(AtomicFile, CommitReplacesTheContentAndRemovesTheTemporary) {
  TempDir dir;
  const std::string path = dir.file("out.txt");
  write_bytes(path, "old content, longer than the new one");
  {
    AtomicFile f(path);
    f.write("new ");
    const char tail[] = {'c', '\0', 'x'};
    f.write(tail, sizeof tail);
    // Before commit a reader still sees the old file; the new bytes are in the temporary.
    EXPECT_EQ(read_bytes(path), "old content, longer than the new one");
    EXPECT_THAT(dir.entries(), ElementsAre("out.txt", tmp_name("out.txt")));
    f.commit();
    EXPECT_EQ(read_bytes(path), std::string("new c\0x", 7));
    EXPECT_THAT(dir.entries(), ElementsAre("out.txt"));
  }
  // Destruction after commit changes nothing.
  EXPECT_EQ(read_bytes(path), std::string("new c\0x", 7));
  EXPECT_THAT(dir.entries(), ElementsAre("out.txt"));
}

TEST(AtomicFile, DestructionWithoutCommitLeavesTheOldFileAndNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("out.txt");
  write_bytes(path, "old");
  {
    AtomicFile f(path);
    f.write("partial new content");
  }
  EXPECT_EQ(read_bytes(path), "old");
  EXPECT_THAT(dir.entries(), ElementsAre("out.txt"));
}

TEST(AtomicFile, ExceptionBeforeCommitCreatesNoFile) {
  TempDir dir;
  const std::string path = dir.file("new.bin");
  try {
    AtomicFile f(path);
    f.write("half");
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(exists(path));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, WriteFileAtomicCreatesThenOverwrites) {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  const std::string binary("\0\x01\xff\n\r", 5);
  write_file_atomic(path, binary);
  EXPECT_EQ(read_bytes(path), binary);
  write_file_atomic(path, "");
  EXPECT_EQ(read_bytes(path), "");
  EXPECT_THAT(dir.entries(), ElementsAre("f.bin"));
}

TEST(AtomicFile, MissingFolderRefusedNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("missing/out.txt");
  EXPECT_INPUT_ERROR(AtomicFile f(path), path, "cannot create output file");
  EXPECT_INPUT_ERROR(write_file_atomic(path, "x"), path, "cannot create output file");
}

TEST(AtomicFile, CommitOntoADirectoryFailsAndRemovesTheTemporary) {
  TempDir dir;
  const std::string path = dir.file("sub");
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  write_bytes(path + "/keep", "k");
  EXPECT_INPUT_ERROR(write_file_atomic(path, "data"), path, "rename failed");
  EXPECT_THAT(dir.entries(), ElementsAre("sub"));
  EXPECT_EQ(read_bytes(path + "/keep"), "k");
}

TEST(AtomicFile, TemporaryNameCarriesHostAndPid) {
  const std::string t = atomic_temp_path("/d/out.npy", 1234);
  ASSERT_EQ(t.size(), std::string("/d/out.npy.tmp.01234567.1234").size()) << t;
  EXPECT_EQ(t.substr(0, 15), "/d/out.npy.tmp.");
  EXPECT_EQ(t.substr(t.size() - 5), ".1234");
  EXPECT_EQ(atomic_temp_path("/d/out.npy", 1234), t);  // stable within a tag
}

TEST(AtomicFile, StaleTemporariesOfDeadRunsAreRemovedAndNothingElse) {
  TempDir dir;
  const std::string path = dir.file("out.npy");
  const pid_t dead = dead_pid(), dead2 = dead_pid();
  const std::string tag = atomic_temp_path("", 0).substr(5, 8);  // ".tmp.<tag>.0"
  write_bytes(path, "the user's output");
  write_bytes(atomic_temp_path(path, dead), "half a file of a killed run");
  ASSERT_EQ(::mkdir(atomic_temp_path(path, dead2).c_str(), 0755), 0);  // a bundle's temporary
  write_bytes(atomic_temp_path(path, dead2) + "/w.bin", "x");
  // Kept: a live process (our parent), another tag, names that only look similar, an old bundle,
  // and the temporaries of other outputs.
  const std::string live = tmp_name("out.npy", ::getppid());
  write_bytes(dir.file(live), "live");
  const std::string other_host = std::string("out.npy.tmp.") +
                                 (tag == "00000000" ? "11111111" : "00000000") + "." +
                                 std::to_string(dead);
  write_bytes(dir.file(other_host), "run of another machine");
  const std::string kept[] = {
      "out.npy.tmp." + tag + "." + std::to_string(dead) + "x",
      "out.npy.tmp." + tag + ".0" + std::to_string(dead), "out.npy.tmp." + std::to_string(dead),
      "out.npy.old." + std::to_string(dead), "other.npy.tmp." + tag + "." + std::to_string(dead)};
  for (const std::string& k : kept) write_bytes(dir.file(k), "keep");

  const std::vector<std::string> removed = remove_stale_temporaries(path);
  std::vector<std::string> expected = {tmp_name("out.npy", dead), tmp_name("out.npy", dead2)};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(removed, expected);
  for (const std::string& e : expected) EXPECT_FALSE(exists(dir.file(e))) << e;
  EXPECT_EQ(read_bytes(path), "the user's output");
  EXPECT_EQ(read_bytes(dir.file(live)), "live");
  EXPECT_EQ(read_bytes(dir.file(other_host)), "run of another machine");
  for (const std::string& k : kept) EXPECT_EQ(read_bytes(dir.file(k)), "keep") << k;
  EXPECT_TRUE(remove_stale_temporaries(path).empty());  // nothing left to remove
}

TEST(AtomicFile, NewWriterRemovesTheTemporaryOfAKilledRun) {
  TempDir dir;
  const std::string path = dir.file("out.txt");
  write_bytes(atomic_temp_path(path, dead_pid()), "left by a killed run");
  write_file_atomic(path, "new");
  EXPECT_EQ(read_bytes(path), "new");
  EXPECT_THAT(dir.entries(), ElementsAre("out.txt"));
}

TEST(ReadFile, ReturnsTheWholeFileIncludingNulBytes) {
  TempDir dir;
  std::string big(100000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  write_bytes(dir.file("big"), big);
  EXPECT_EQ(read_file(dir.file("big")), big);
  write_bytes(dir.file("empty"), "");
  EXPECT_EQ(read_file(dir.file("empty")), "");
}

TEST(ReadFile, DirectoryRefused) {
  TempDir dir;
  EXPECT_INPUT_ERROR(read_file(dir.path()), dir.path(), "not a regular file");
}

TEST(ReadFile, MissingFileRefused) {
  TempDir dir;
  EXPECT_INPUT_ERROR(read_file(dir.file("nope")), dir.file("nope"), "cannot open");
}

}  // namespace
}  // namespace tilescale
