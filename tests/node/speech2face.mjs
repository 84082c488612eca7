// Runs a bundle's speech2face.onnx with onnxruntime-node alone: no speech2face code.
// usage: node speech2face.mjs MODEL.onnx WAVEFORM.f32 OUT_PREFIX
//   WAVEFORM.f32: raw little-endian float32 samples, 16 kHz mono (one clip, batch of 1)
//   writes OUT_PREFIX.image.u8, OUT_PREFIX.landmarks.f32, OUT_PREFIX.embedding.f32 and OUT_PREFIX.json (shapes)
import { readFileSync, writeFileSync } from "node:fs";
import * as ort from "onnxruntime-node";

const [modelPath, wavePath, prefix] = process.argv.slice(2);
const bytes = readFileSync(wavePath);
const samples = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const session = await ort.InferenceSession.create(modelPath, { executionProviders: ["cpu"] });
const started = performance.now();
const outputs = await session.run({ waveform: new ort.Tensor("float32", samples, [1, samples.length]) });
const milliseconds = performance.now() - started;
const shapes = {};
for (const name of ["image", "landmarks", "embedding"]) {
  const tensor = outputs[name];
  const suffix = tensor.type === "uint8" ? "u8" : "f32";
  writeFileSync(`${prefix}.${name}.${suffix}`, Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
  shapes[name] = { dims: tensor.dims, type: tensor.type };
}
writeFileSync(`${prefix}.json`, JSON.stringify({ inputs: session.inputNames, outputs: session.outputNames, shapes, milliseconds }));
