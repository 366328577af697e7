// AtomicFile and read_file: the final path holds the old content or the complete new content, never
// a partial file, and no temporary file outlives the writer.
#include "tilescale/core/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "expect_input_error.h"
#include "test_files.h"

namespace tilescale {
namespace {

using test::exists;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;
using ::testing::ElementsAre;

std::string tmp_name(const std::string& name) {
  return name + ".tmp." + std::to_string(::getpid());
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
