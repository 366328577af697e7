// The network as tilescale sees it after import: a topologically ordered list of nodes over
// activation values whose shapes are known per sample (the batch dimension is implicit and free).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tilescale::model {

enum class Op {
  Conv,               // 2-D convolution, any groups; weight [Cout][Cin/groups][kh][kw]
  Gemm,               // fully connected; weight [Nout][K] (output x input), from Gemm or MatMul
  Relu,               // max(x, 0)
  Clip,               // min(max(x, clip_min), clip_max), e.g. ReLU6
  Add,                // elementwise; second operand another value or a constant
  Sub,                //   "
  Mul,                //   "
  Div,                //   "
  MaxPool,            // window attributes in Node::window
  AveragePool,        // window attributes in Node::window, count_include_pad
  GlobalAveragePool,  // [C][H][W] -> [C][1][1]
  Reshape,            // Flatten or Reshape: same data, new per-sample shape
  Concat,             // along per-sample axis Node::axis
  Pad,                // constant padding of the spatial/channel axes
  FakeQuant,          // clamp(floor(x / step + 0.5), lo, hi) * step: a quantization grid in float
};

const char* op_name(Op op);

// A dense float tensor in C order.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  int64_t numel() const;
};

// An activation tensor flowing between nodes.
struct Value {
  std::string name;            // ONNX tensor name
  std::vector<int64_t> shape;  // per-sample dims, batch excluded: {C, H, W} or {F}
  int64_t size() const;        // elements per sample
};

// Sliding-window geometry shared by Conv and the pooling ops.
struct Window {
  int64_t kernel_h = 1, kernel_w = 1;      // elements
  int64_t stride_h = 1, stride_w = 1;      // elements
  int64_t dilation_h = 1, dilation_w = 1;  // elements
  int64_t pad_top = 0, pad_left = 0;       // elements added before the input
  int64_t pad_bottom = 0, pad_right = 0;   // elements added after the input
  int64_t groups = 1;                      // Conv only
};

struct Node {
  Op op = Op::Relu;
  std::string name;                // ONNX node name, or "<OpType>_<index>" when the file gives none
  std::string onnx_op;             // the ONNX op type it came from (e.g. "MatMul" for an Op::Gemm)
  std::vector<int> inputs;         // activation value ids (1, or 2+ for binary ops and Concat)
  int output = -1;                 // value id
  Window window;                   // Conv, MaxPool, AveragePool
  bool count_include_pad = false;  // AveragePool: divide by the full window, padding included
  Tensor weight;                   // Conv: [Cout][Cin/groups][kh][kw]; Gemm: [Nout][K]
  Tensor bias;                     // Conv/Gemm: [Cout], zeros when the file has none
  float clip_min = 0.0f;           // Clip lower bound
  float clip_max = 0.0f;           // Clip upper bound
  Tensor operand;  // binary op with a constant: broadcast to the input's per-sample shape
  bool operand_first = false;  // the constant is the left operand (matters for Sub and Div)
  std::vector<int64_t> pads;   // Pad: begin then end, per per-sample axis
  float pad_value = 0.0f;      // Pad: constant
  int axis = 0;                // Concat: per-sample axis
  float fq_step = 1.0f;        // FakeQuant: grid step
  float fq_lo = 0.0f;          // FakeQuant: smallest code
  float fq_hi = 0.0f;          // FakeQuant: largest code
  // Optional integer form of `weight`, read only by the ONNX writer (executors read `weight`):
  // weight[i] == float(weight_codes[i]) * step[i], one float32 product, with `weight_step`
  // broadcast over the weight's shape: [Cout][Cin/groups][1][1] when constant over the window,
  // else the weight's shape. Empty: the weight is written as float.
  std::vector<int8_t> weight_codes;  // same layout as weight
  Tensor weight_step;
};

struct Graph {
  std::string source;  // file it was imported from, for messages
  int64_t opset = 0;   // default-domain opset of the file
  std::vector<Value> values;
  std::vector<Node> nodes;  // topological order
  int input = -1;           // value id of the network input
  int output = -1;          // value id of the logits

  const Value& input_value() const { return values[input]; }
  const Value& output_value() const { return values[output]; }
  int64_t parameter_count() const;  // weights + biases
  int64_t macs_per_sample() const;  // multiply-accumulates of Conv and Gemm nodes for one sample
  // Elements of all activation values of one sample together, and of the largest im2col matrix
  // of one sample (Cin/groups*kh*kw x output positions, all groups); in double, since a hostile
  // file's sizes can overflow int64 when summed. The executors size their buffers from these.
  double activation_elements_per_sample() const;
  double largest_im2col_elements_per_sample() const;
};

}  // namespace tilescale::model
