// Runs a bundle's speech2face.onnx with onnxruntime-node alone: no speech2face code.
// usage: node speech2face.mjs MODEL.onnx WAVEFORM.f32 OUT_PREFIX [REPEATS]
//   WAVEFORM.f32: raw little-endian float32 samples, 16 kHz mono (one clip, batch of 1)
//   writes OUT_PREFIX.image.u8, OUT_PREFIX.landmarks.f32, OUT_PREFIX.embedding.f32 and OUT_PREFIX.json (shapes)
import { readFileSync, writeFileSync } from "node:fs";
import * as ort from "onnxruntime-node";

const [modelPath, wavePath, prefix, repeatsText] = process.argv.slice(2);
const repeats = Number(repeatsText ?? 1);
const bytes = readFileSync(wavePath);
const samples = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const session = await ort.InferenceSession.create(modelPath, { executionProviders: ["cpu"] });
const feeds = { waveform: new ort.Tensor("float32", samples, [1, samples.length]) };
const times = [];
let outputs;
for (let i = 0; i < repeats; i++) {
  const started = performance.now();
  outputs = await session.run(feeds);
  times.push(performance.now() - started);
}
const milliseconds = times[0];
const later = times.slice(1).sort((a, b) => a - b);
const medianMs = later.length ? later[Math.floor(later.length / 2)] : null;
const shapes = {};
for (const name of ["image", "landmarks", "embedding"]) {
  const tensor = outputs[name];
  const suffix = tensor.type === "uint8" ? "u8" : "f32";
  writeFileSync(`${prefix}.${name}.${suffix}`, Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
  shapes[name] = { dims: tensor.dims, type: tensor.type };
}
writeFileSync(`${prefix}.json`, JSON.stringify({ inputs: session.inputNames, outputs: session.outputNames, shapes, milliseconds, medianMs }));
