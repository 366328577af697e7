#!/usr/bin/env node
// Runs a model exported by `tilescale quantize --export-onnx` with ONNX Runtime (onnxruntime-node) on
// IDX test images and compares its logits with tilescale's own fake-quant logits
// (`tilescale eval --bundle B --mode fake --dump-logits L.npy`): top-1 agreement and max |difference|.
// Installs nothing: onnxruntime-node must already be in scripts/ort/node_modules (check_export_ort.sh
// puts it there) or on NODE_PATH. docs/export.md explains the numbers.
//
// usage: node scripts/check_export_ort.js --model M.onnx --logits L.npy
//            (--dataset mnist|fmnist [--split test] [--data-dir DIR] | --images I.idx)
//            [--limit N] [--batch 256] [--opt-level disabled|basic|extended|all] [--threads 0]
//            [--no-qdq-transforms] [--dump-optimized O.onnx] [--min-agreement 0.999] [--json]
// The session is ONNX Runtime's default (graph optimization "all", QDQ transformers on), as a user
// would open the file; --no-qdq-transforms sets session.disable_quant_qdq=1 to compare (the export's
// form leaves the transformers nothing to change: docs/export.md). --dump-optimized writes the graph
// ONNX Runtime actually runs (optimizedModelFilePath). --ort-qdq-transforms (the default) is kept
// for older callers.
// Exit codes: 0 ok, 1 agreement below --min-agreement, 2 bad input.
'use strict';

const fs = require('fs');
const path = require('path');

class InputError extends Error {}

function parseArgs(argv) {
  const opts = {
    model: '', logits: '', dataset: '', split: 'test', dataDir: '', images: '', limit: 0,
    batch: 256, optLevel: 'all', threads: 0, minAgreement: -1, json: false, qdqTransforms: true,
    dumpOptimized: '',
  };
  const keys = {
    '--model': 'model', '--logits': 'logits', '--dataset': 'dataset', '--split': 'split',
    '--data-dir': 'dataDir', '--images': 'images', '--limit': 'limit', '--batch': 'batch',
    '--opt-level': 'optLevel', '--threads': 'threads', '--min-agreement': 'minAgreement',
    '--dump-optimized': 'dumpOptimized',
  };
  const numeric = new Set(['limit', 'batch', 'threads', 'minAgreement']);
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--json') { opts.json = true; continue; }
    if (a === '--ort-qdq-transforms') { opts.qdqTransforms = true; continue; }
    if (a === '--no-qdq-transforms') { opts.qdqTransforms = false; continue; }
    if (a === '-h' || a === '--help') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 17)
          .map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    }
    const key = keys[a];
    if (!key) throw new InputError(`${a}: unknown option`);
    if (i + 1 >= argv.length) throw new InputError(`${a}: needs a value`);
    const v = argv[++i];
    if (numeric.has(key)) {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new InputError(`${a}: not a number: '${v}'`);
      opts[key] = n;
    } else {
      opts[key] = v;
    }
  }
  if (!opts.model) throw new InputError('--model: required (the exported ONNX file)');
  if (!opts.logits) throw new InputError('--logits: required (tilescale eval --dump-logits output)');
  if (!opts.dataset === !opts.images) throw new InputError('--dataset: give exactly one of --dataset and --images');
  if (opts.batch < 1) throw new InputError('--batch: must be >= 1');
  if (!['disabled', 'basic', 'extended', 'all'].includes(opts.optLevel))
    throw new InputError(`--opt-level: unknown level '${opts.optLevel}' (disabled, basic, extended, all)`);
  return opts;
}

function readFile(p) {
  try {
    return fs.readFileSync(p);
  } catch (e) {
    throw new InputError(`${p}: cannot read: ${e.message}`);
  }
}

// An IDX file of unsigned bytes: {dims, data (Uint8Array view)}.
function readIdx(p) {
  const b = readFile(p);
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) throw new InputError(`${p}: not an IDX file (bad magic number)`);
  if (b[2] !== 0x08) throw new InputError(`${p}: IDX element type must be unsigned byte (0x08)`);
  const ndim = b[3];
  if (ndim < 1 || ndim > 4 || b.length < 4 + 4 * ndim) throw new InputError(`${p}: bad IDX header`);
  const dims = [];
  let count = 1;
  for (let i = 0; i < ndim; ++i) {
    dims.push(b.readUInt32BE(4 + 4 * i));
    count *= dims[i];
  }
  const offset = 4 + 4 * ndim;
  if (b.length - offset !== count)
    throw new InputError(`${p}: IDX header promises ${count} bytes of data, file has ${b.length - offset}`);
  return { dims, data: new Uint8Array(b.buffer, b.byteOffset + offset, count) };
}

// A little-endian float32 .npy array (versions 1-3, C order): {shape, data (Float32Array)}.
function readNpyF32(p) {
  const b = readFile(p);
  if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new InputError(`${p}: not a .npy file`);
  const major = b[6];
  let headerLen, start;
  if (major === 1) {
    headerLen = b.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = b.readUInt32LE(8);
    start = 12;
  } else {
    throw new InputError(`${p}: unsupported .npy version ${major}`);
  }
  const header = b.toString('latin1', start, start + headerLen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new InputError(`${p}: malformed .npy header`);
  if (descr[1] !== '<f4') throw new InputError(`${p}: dtype ${descr[1]}, expected <f4 (float32)`);
  if (fortran[1] !== 'False') throw new InputError(`${p}: Fortran-order arrays are not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, d) => a * d, 1);
  const offset = start + headerLen;
  if (b.length - offset !== 4 * count)
    throw new InputError(`${p}: shape (${dims}) needs ${4 * count} bytes of data, file has ${b.length - offset}`);
  // Copy into an aligned buffer (the data offset is 64-byte aligned in the file, not in memory).
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(b.subarray(offset, offset + 4 * count));
  return { shape: dims, data };
}

function loadOrt() {
  const local = path.join(__dirname, 'ort', 'node_modules', 'onnxruntime-node');
  try {
    return require(fs.existsSync(local) ? local : 'onnxruntime-node');
  } catch (e) {
    throw new InputError(`onnxruntime-node: not installed (run scripts/check_export_ort.sh, or ` +
                         `npm ci --prefix scripts/ort): ${e.message}`);
  }
}

function argmax(a, off, n) {
  let best = 0;
  for (let i = 1; i < n; ++i) if (a[off + i] > a[off + best]) best = i;
  return best;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const imagesPath = opts.images ||
      path.join(opts.dataDir || path.join(__dirname, '..', 'data'), opts.dataset, `${opts.split}-images.idx`);
  const idx = readIdx(imagesPath);
  const ref = readNpyF32(opts.logits);
  if (ref.shape.length !== 2) throw new InputError(`${opts.logits}: expected [N, classes] logits, got (${ref.shape})`);
  const [refCount, classes] = ref.shape;
  const [imgCount, ...imgDims] = idx.dims;
  const imageDims = imgDims.length === 2 ? [1, ...imgDims] : imgDims;  // [C][H][W]
  const imageSize = imageDims.reduce((a, d) => a * d, 1);
  let n = Math.min(refCount, imgCount);
  if (opts.limit > 0) n = Math.min(n, opts.limit);
  if (n === 0) throw new InputError(`${opts.logits}: no images to compare`);

  const ort = loadOrt();
  let session;
  try {
    session = await ort.InferenceSession.create(opts.model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: opts.optLevel,
      intraOpNumThreads: opts.threads,
      ...(opts.qdqTransforms ? {} : { extra: { session: { disable_quant_qdq: '1' } } }),
      ...(opts.dumpOptimized ? { optimizedModelFilePath: opts.dumpOptimized } : {}),
    });
  } catch (e) {
    throw new InputError(`${opts.model}: ONNX Runtime refused the model: ${e.message}`);
  }
  const inputName = session.inputNames[0], outputName = session.outputNames[0];

  // Pixels as the models expect them: float32(pixel) * float32(1 / 255), as Dataset::fill_batch does.
  const kScale = Math.fround(1 / 255);
  let same = 0, maxDiff = 0, maxRef = 0, ortCorrect = 0, refCorrect = 0;
  const rowDiff = new Float64Array(n);  // max |difference| per image
  let labels = null;
  if (!opts.images) labels = readIdx(imagesPath.replace(/-images\.idx$/, '-labels.idx')).data;
  const t0 = process.hrtime.bigint();
  for (let first = 0; first < n; first += opts.batch) {
    const m = Math.min(opts.batch, n - first);
    const input = new Float32Array(m * imageSize);
    const px = idx.data.subarray(first * imageSize, (first + m) * imageSize);
    for (let i = 0; i < input.length; ++i) input[i] = px[i] * kScale;
    const feeds = { [inputName]: new ort.Tensor('float32', input, [m, ...imageDims]) };
    const out = (await session.run(feeds))[outputName];
    if (out.dims.length !== 2 || out.dims[1] !== classes)
      throw new InputError(`${opts.model}: output '${outputName}' has shape [${out.dims}], the logits file has ${classes} classes`);
    const got = out.data;
    for (let i = 0; i < m; ++i) {
      const off = (first + i) * classes;
      const po = argmax(got, i * classes, classes), pr = argmax(ref.data, off, classes);
      same += po === pr;
      if (labels) {
        ortCorrect += po === labels[first + i];
        refCorrect += pr === labels[first + i];
      }
      for (let c = 0; c < classes; ++c) {
        rowDiff[first + i] = Math.max(rowDiff[first + i], Math.abs(got[i * classes + c] - ref.data[off + c]));
        maxRef = Math.max(maxRef, Math.abs(ref.data[off + c]));
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // Images whose logits match to float rounding (1e-5 of the largest |logit|); the rest had at
  // least one activation land on another code (float sums in another order, or a rounding tie).
  let close = 0;
  for (let i = 0; i < n; ++i) {
    maxDiff = Math.max(maxDiff, rowDiff[i]);
    close += rowDiff[i] <= 1e-5 * Math.max(maxRef, 1);
  }
  const report = {
    model: opts.model,
    runtime: `onnxruntime-node ${ort.env.versions ? ort.env.versions.node : '?'}`,
    opt_level: opts.optLevel,
    qdq_transforms: opts.qdqTransforms,
    images: n,
    agreement: same / n,
    disagreements: n - same,
    max_abs_logit_diff: maxDiff,
    max_abs_logit: maxRef,
    images_logits_match: close,
    ort_top1: labels ? ortCorrect / n : null,
    tilescale_top1: labels ? refCorrect / n : null,
    seconds,
  };
  if (opts.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    const pct = (x) => (100 * x).toFixed(2) + ' %';
    console.log(`model      ${report.model}`);
    console.log(`runtime    ${report.runtime} (graph optimization ${report.opt_level}, QDQ ` +
                `transforms ${opts.qdqTransforms ? 'on' : 'off'})`);
    console.log(`images     ${n}`);
    console.log(`agreement  ${pct(report.agreement)} top-1 (${report.disagreements} differ)`);
    console.log(`max diff   ${maxDiff.toExponential(3)} (max |logit| ${maxRef.toFixed(3)}); ` +
                `${close} images match to 1e-5 relative`);
    if (labels) console.log(`top-1      ORT ${pct(report.ort_top1)}, tilescale fake-quant ${pct(report.tilescale_top1)}`);
  }
  if (opts.minAgreement >= 0 && report.agreement < opts.minAgreement) {
    console.error(`check_export_ort: agreement ${report.agreement} is below ${opts.minAgreement}`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e instanceof InputError ? `check_export_ort: ${e.message}` : e.stack || String(e));
  process.exit(e instanceof InputError ? 2 : 1);
});
