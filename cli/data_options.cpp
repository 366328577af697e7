#include "data_options.h"

#include "tilescale/core/error.h"

namespace po = boost::program_options;

namespace tilescale::cli {

void DataOptions::add_to(po::options_description& desc) {
  desc.add_options()("dataset", po::value(&dataset), "bundled data set: fmnist | mnist")(
      "split", po::value(&split)->default_value(split), "train | test")(
      "images", po::value(&images)->multitoken(),
      "your own images: an IDX file, or CIFAR-10 .bin batches")("labels", po::value(&labels),
                                                                "IDX label file for --images")(
      "format", po::value(&format)->default_value(format), "format of --images: idx | cifar10")(
      "data-dir", po::value(&data_dir),
      "folder of the bundled data sets (default: $TILESCALE_DATA or <source>/data)")(
      "limit", po::value(&limit)->default_value(0), "use only the first N images (0 = all)");
}

Dataset DataOptions::load() const {
  if (limit < 0) fail_input("--limit", "must be >= 0");
  Dataset d;
  if (!images.empty()) {
    if (!dataset.empty()) fail_input("--images", "give either --dataset or --images, not both");
    if (format == "idx") {
      if (images.size() != 1) fail_input("--images", "IDX takes one image file");
      if (labels.empty()) fail_input("--labels", "IDX images need a label file (--labels)");
      d = load_idx(images[0], labels);
    } else if (format == "cifar10") {
      if (!labels.empty()) fail_input("--labels", "CIFAR-10 batches hold their own labels");
      d = load_cifar10(images);
    } else {
      fail_input("--format", "unknown format '" + format + "' (idx or cifar10)");
    }
  } else {
    if (dataset.empty())
      fail_input("--dataset", "choose a data set (fmnist, mnist) or give --images");
    with_source("--dataset", [&] { check_dataset_name(dataset); });
    with_source("--split", [&] { check_split(split); });
    d = load_named(dataset, split, data_dir.empty() ? default_data_dir() : data_dir);
  }
  if (limit > d.count)
    fail_input("--limit", std::to_string(limit) + " is more than the " + std::to_string(d.count) +
                              " images of " + d.source);
  if (limit > 0) d.truncate(limit);
  return d;
}

std::string DataOptions::describe() const {
  if (images.empty()) return dataset + " " + split;
  std::string s;
  for (const auto& f : images) s += (s.empty() ? "" : ",") + f;
  return s;
}

}  // namespace tilescale::cli
