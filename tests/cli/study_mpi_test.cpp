// tilescale sweep under `mpirun -np 2 --oversubscribe` (Debian's OpenMPI) on studies/tiny.json:
// the results files are byte-identical to a single-process run, and rank 1 did some of the work
// (its points carry no marker, so the check is that both ranks took tasks: see the log).

#include <gtest/gtest.h>

#include <string>

#include "study_cli.h"
#include "tilescale/core/atomic_file.h"

namespace tilescale::study {
namespace {

// OpenMPI refuses to run as root without these (a container's usual user).
const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe ";

TEST(StudyMpi, TwoRanksWriteTheFilesOfOneProcess) {
  ScratchDir single("mpi_single"), mpi("mpi_two");
  const CliResult a = run_sweep(kTinyStudy, single, "--jobs 1");
  ASSERT_EQ(a.code, 0) << a.err;
  const CliResult b = run_sweep(kTinyStudy, mpi, "", kMpirun);
  ASSERT_EQ(b.code, 0) << b.out << b.err;
  EXPECT_NE(b.out.find("41/41"), std::string::npos) << "only rank 0 logs, once per point\n"
                                                    << b.out;
  EXPECT_EQ(b.out.find("42/41"), std::string::npos) << b.out;
  EXPECT_EQ(read_file(single.file("results.csv")), read_file(mpi.file("results.csv")));
  EXPECT_EQ(read_file(single.file("results.jsonl")), read_file(mpi.file("results.jsonl")));
  EXPECT_EQ(read_file(single.file("study.json")), read_file(mpi.file("study.json")));
}

TEST(StudyMpi, ABadStudyFileStopsEveryRankWithExitTwo) {
  ScratchDir out("mpi_bad");
  const CliResult r =
      run_cli("sweep --config /nonexistent/study.json --out " + out.path.string(), kMpirun);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("/nonexistent/study.json"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out.path));
}

}  // namespace
}  // namespace tilescale::study
