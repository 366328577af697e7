// Top-1 accuracy of a network on a labelled data set, and the check that the two fit, shared by
// `tilescale eval`, the sweep and the simulator so that all three count a prediction alike.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

#include "tilescale/core/dataset.h"
#include "tilescale/model/graph.h"

namespace tilescale::model {

// Throws InputError naming model_name unless the graph takes the data set's images (its per-sample
// input shape is C x H x W of the images) and has an output for every label.
void check_model_fits_data(const Graph& graph, const Dataset& data, const std::string& model_name);

// The predicted class: the index of the largest logit, the first of equal ones.
template <typename T>
int64_t top1_class(const T* logits, int64_t classes) {
  return std::max_element(logits, logits + classes) - logits;
}

// Computes the [n][classes] logits of n NCHW float images.
using BatchRun = std::function<void(const float* input, int64_t n, float* logits)>;

struct Top1Options {
  int64_t batch = 256;      // images per run() call
  float* logits = nullptr;  // if set, receives every image's logits, [count][classes]
  // If set, called after each batch with the number of images done so far.
  std::function<void(int64_t done)> progress;
};

// Runs every image of data through run, in order and options.batch images at a time, and returns
// how many images' top1_class equals their label.
int64_t count_top1(const Dataset& data, int64_t classes, const BatchRun& run,
                   const Top1Options& options = {});

}  // namespace tilescale::model
