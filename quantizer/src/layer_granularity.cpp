#include "tilescale/quant/layer_granularity.h"

#include <nlohmann/json.hpp>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

namespace tilescale::quant {

namespace {

bool is_weighted(const model::Node& n) {
  return n.op == model::Op::Conv || n.op == model::Op::Gemm;
}

}  // namespace

LayerGranularity read_layer_granularity(const std::string& path) {
  const std::string text = read_file(path);  // InputError naming the path if unreadable
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail_input(path, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object())
    fail_input(path,
               "expected one JSON object of layer name -> granularity, e.g. "
               "{\"conv1\": \"channel\", \"conv2\": \"block:16x16\"}");
  LayerGranularity out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string())
      fail_input(path, "layer '" + it.key() + "': the granularity is not a string");
    try {
      out[it.key()] = Granularity::parse(it.value().get<std::string>());
    } catch (const InputError& e) {
      fail_input(path, "layer '" + it.key() + "': " + e.what());
    }
  }
  return out;
}

void check_layer_granularity(const model::Graph& graph, const LayerGranularity& layers,
                             const std::string& source) {
  for (const auto& [name, g] : layers) {
    const model::Node* node = nullptr;
    for (const model::Node& n : graph.nodes)
      if (is_weighted(n) && n.name == name) node = &n;
    if (node == nullptr) {
      std::string names;
      for (const model::Node& n : graph.nodes)
        if (is_weighted(n)) names += (names.empty() ? "" : ", ") + n.name;
      fail_input(source, "'" + name + "' is not a Conv/Gemm layer of " + graph.source +
                             " (its layers: " + names + ")");
    }
  }
}

void write_layer_granularity(const LayerGranularity& layers, const std::string& path) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [name, g] : layers) j[name] = g.str();
  write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace tilescale::quant
