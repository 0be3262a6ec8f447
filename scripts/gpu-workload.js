#!/usr/bin/env node
// A small workload that touches every CUDA kernel once or a few times, for
// compute-sanitizer (memcheck, racecheck, synccheck) in
// scripts/device-check.sh: each result is checked against the CPU, so the
// run also fails on a wrong answer. Exits 2 without a CUDA backend.
// --cpu-dry-run puts the CPU backends where the GPU ones would be, so a test
// can run this script's own code where there is no GPU.
'use strict';
const crypto = require('node:crypto');
const assert = require('node:assert/strict');
const gk = require('../dist/index.js');

const dry = process.argv.includes('--cpu-dry-run');
const AEAD = dry ? 'js' : 'cuda';
const DEVICE = dry ? 'cpu' : 'cuda';
const SANDBOX = dry ? 'js' : 'cuda';
if (!dry && gk.backends().gpu.kind !== 'cuda') {
  console.error(`gpu-workload: no CUDA backend (${gk.backends().gpu.reason})`);
  process.exit(2);
}
const authFailed = (fn) => assert.throws(fn, (e) => e.code === gk.ErrorCodes.AUTH_FAILED);

// One message: CTR, the GHASH tree (one and several thread blocks), the XOR.
for (const len of [0, 1, 16, 17, 4096, 70_000, 300_000]) {
  for (const alg of ['aes-256-gcm', 'aes-128-gcm']) {
    const key = crypto.randomBytes(alg === 'aes-256-gcm' ? 32 : 16);
    const nonce = crypto.randomBytes(12);
    const pt = crypto.randomBytes(len);
    const aad = crypto.randomBytes(len % 50);
    const gpu = gk.aead.seal(alg, key, nonce, pt, aad, { backend: AEAD });
    const cpu = gk.aead.seal(alg, key, nonce, pt, aad, { backend: 'native' });
    assert.ok(gpu.ciphertext.equals(cpu.ciphertext) && gpu.tag.equals(cpu.tag), `seal ${alg} ${len}`);
    assert.ok(gk.aead.open(alg, key, nonce, cpu.ciphertext, cpu.tag, aad, { backend: AEAD }).equals(pt), `open ${alg} ${len}`);
    cpu.tag[15] ^= 1;
    authFailed(() => gk.aead.open(alg, key, nonce, cpu.ciphertext, cpu.tag, aad, { backend: AEAD }));
  }
}

// Control blocks: groups of 1 to 32 lanes each (lanes with one, several and partial blocks).
const master = crypto.randomBytes(32);
const gpuEnc = new gk.MemoryEncryption({ key: master, device: DEVICE });
const cpuEnc = new gk.MemoryEncryption({ key: master, device: 'cpu' });
for (const [size, count] of [[1, 3], [16, 5], [40, 9], [513, 7], [4096, 10]]) {
  const data = crypto.randomBytes(size * count);
  const sealed = gpuEnc.encryptBlocks(data, size, Buffer.from('aad'));
  assert.ok(cpuEnc.decryptBlocks(sealed, Buffer.from('aad')).equals(data), `blocks ${count} x ${size}`);
  assert.ok(gpuEnc.decryptBlocks(sealed, Buffer.from('aad')).equals(data), `open blocks ${count} x ${size}`);
  sealed[sealed.length - 1] ^= 1;
  authFailed(() => gpuEnc.decryptBlocks(sealed, Buffer.from('aad')));
}

// Device buffers: encrypt and decrypt without leaving the device.
const plain = crypto.randomBytes(1000);
const env = gpuEnc.encrypt(gk.DeviceBuffer.from(plain, { device: DEVICE }));
assert.ok(gpuEnc.decrypt(env).toHost().equals(plain), 'device buffer round trip');
env.free();

// The K2K sandbox's parallel checker against the native one.
const make = () => {
  const box = new gk.KernelSandbox(new gk.ResourceLimits().maxMessagesPerSecond(500).maxK2kConnections(4).maxMemoryBytes(1 << 16), gk.SandboxPolicy.permissive().denyK2kTo(['k1*']));
  for (let k = 0; k < 40; k++) box.registerKernel(`k${k}`);
  box.registerTopic('t');
  return box;
};
const n = 5000;
const batch = { src: new Uint32Array(n), dst: new Uint32Array(n), topic: new Uint32Array(n), bytes: new Uint32Array(n) };
for (let i = 0; i < n; i++) {
  batch.src[i] = (i * 7) % 40;
  batch.dst[i] = (i * 13) % 41; // 40 is no kernel: unknown_kernel
  batch.bytes[i] = (i * 31) % 300;
}
const onDevice = make().checkMessages(batch, 1000, { backend: SANDBOX });
const onCpu = make().checkMessages(batch, 1000, { backend: gk.backends().core.kind === 'native' ? 'native' : 'js' });
assert.ok(Buffer.from(onDevice.verdicts).equals(Buffer.from(onCpu.verdicts)), 'sandbox verdicts');
console.log(dry ? 'gpu-workload: dry run on the CPU passed' : 'gpu-workload: every kernel ran and matched the CPU');
