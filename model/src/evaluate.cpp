#include "tilescale/model/evaluate.h"

#include <vector>

#include "tilescale/core/error.h"

namespace tilescale::model {
namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string r;
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "x" : "") + std::to_string(s[i]);
  return r;
}

}  // namespace

void check_model_fits_data(const Graph& graph, const Dataset& data, const std::string& model_name) {
  const auto& in_shape = graph.input_value().shape;
  const std::vector<int64_t> data_shape = {data.channels, data.height, data.width};
  if (in_shape != data_shape)
    fail_input(model_name, "model expects " + shape_text(in_shape) + " images but " + data.source +
                               " holds " + shape_text(data_shape) + " images");
  const int64_t classes = graph.output_value().size();
  if (data.num_classes > classes)
    fail_input(model_name, "model has " + std::to_string(classes) + " outputs but " + data.source +
                               " has labels up to " + std::to_string(data.num_classes - 1));
}

int64_t count_top1(const Dataset& data, int64_t classes, const BatchRun& run,
                   const Top1Options& options) {
  // A batch never holds more than the whole data set, however large options.batch is.
  const int64_t batch = std::max<int64_t>(std::min(options.batch, data.count), 1);
  std::vector<float> input(static_cast<std::size_t>(batch * data.image_size()));
  std::vector<float> own_logits;
  if (!options.logits) own_logits.resize(static_cast<std::size_t>(batch * classes));
  int64_t correct = 0;
  for (int64_t first = 0; first < data.count; first += batch) {
    const int64_t n = std::min(batch, data.count - first);
    data.fill_batch(first, n, input.data());
    float* out = options.logits ? options.logits + first * classes : own_logits.data();
    run(input.data(), n, out);
    for (int64_t i = 0; i < n; ++i)
      correct += top1_class(out + i * classes, classes) == data.labels[first + i];
    if (options.progress) options.progress(first + n);
  }
  return correct;
}

}  // namespace tilescale::model
