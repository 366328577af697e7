// Per-layer granularity (issue 14): a map from Conv/Gemm layer name to the granularity that layer
// takes instead of the model-wide one, read from a JSON file or chosen under a hardware budget
// (quantizer/README.md). Depthwise layers may differ from dense ones like any other layer.
#pragma once

#include <map>
#include <string>

#include "tilescale/model/graph.h"
#include "tilescale/quant/granularity.h"

namespace tilescale::quant {

using LayerGranularity = std::map<std::string, Granularity>;

// Reads FILE.json: one JSON object, layer name -> granularity text ("layer", "channel",
// "block:BOxBI", "mx:N", "vsq:N"). Throws InputError naming the file: unreadable, not JSON, not an
// object, a value that is not a string, or an unknown granularity (the entry is named).
LayerGranularity read_layer_granularity(const std::string& path);

// Throws InputError(source, ...) naming the first entry whose name is not a Conv/Gemm layer of
// `graph` (with the layer names it has). A block larger than its layer covers the whole dimension,
// as with the model-wide granularity.
void check_layer_granularity(const model::Graph& graph, const LayerGranularity& layers,
                             const std::string& source);

// Writes the map as the JSON read_layer_granularity reads (keys sorted), atomically.
void write_layer_granularity(const LayerGranularity& layers, const std::string& path);

}  // namespace tilescale::quant
