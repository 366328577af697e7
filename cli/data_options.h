// Data-set options shared by every subcommand that reads images.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "tilescale/core/dataset.h"

namespace tilescale::cli {

struct DataOptions {
  std::string dataset;              // fmnist | mnist (bundled) or empty with --images
  std::string split = "test";       // train | test
  std::vector<std::string> images;  // user files: one IDX image file, or CIFAR-10 batches
  std::string labels;               // IDX label file
  std::string format = "idx";       // idx | cifar10
  std::string data_dir;             // where the bundled sets live
  int64_t limit = 0;                // first N images only; 0 = all

  void add_to(boost::program_options::options_description& desc);
  // Loads and checks the selection; throws InputError naming the option or file.
  Dataset load() const;
  std::string describe() const;  // "fmnist test" or the file names
};

}  // namespace tilescale::cli
