import { secp256k1 } from "@noble/curves/secp256k1";
import { keccak_256 } from "@noble/hashes/sha3";
import { expect } from "chai";
import { computeAddress, id, keccak256, SigningKey, toBeHex } from "ethers";
import {
  addressOfPrivateKey,
  cryptoBackend,
  keccak256Bytes,
  publicKeyOf,
  signDigest,
  useFastKeccakInEthers,
} from "../../common/fast-crypto";
import { createRng } from "../../common/rng";

const bytes = (rng: ReturnType<typeof createRng>, n: number) => Uint8Array.from({ length: n }, () => rng.int(0, 255));

describe("fast-crypto # the same bytes as @noble and ethers", () => {
  it("uses the native add-ons Hardhat installs (else every run signs at a tenth of the speed)", () => {
    expect(cryptoBackend.secp256k1).to.equal("libsecp256k1");
    expect(cryptoBackend.keccak).to.equal("native keccak");
  });

  it("signs as @noble/curves does (RFC 6979, low s), recovery bit included, and as ethers' SigningKey", () => {
    const rng = createRng(11);
    for (let i = 0; i < 200; i++) {
      const key = bytes(rng, 32);
      const digest = bytes(rng, 32);
      const sig = signDigest(digest, key);
      const noble = secp256k1.sign(digest, key, { lowS: true });
      expect([sig.r, sig.s, sig.recovery], `key ${i}`).to.deep.equal([noble.r, noble.s, noble.recovery]);
      expect(sig.s <= secp256k1.CURVE.n / 2n).to.equal(true);
      const ethersSig = new SigningKey(key).sign(digest);
      expect([toBeHex(sig.r, 32), toBeHex(sig.s, 32), 27 + sig.recovery]).to.deep.equal([
        ethersSig.r,
        ethersSig.s,
        ethersSig.v,
      ]);
      expect(Buffer.from(publicKeyOf(key)).equals(Buffer.from(secp256k1.getPublicKey(key, false)))).to.equal(true);
    }
  });

  it("gives a private key's address as ethers' computeAddress does, the first time and from memory", () => {
    const rng = createRng(13);
    const keys = Array.from({ length: 50 }, () => bytes(rng, 32));
    for (const round of ["computed", "remembered"]) {
      for (const [i, key] of keys.entries()) {
        expect(addressOfPrivateKey(key), `${round} key ${i}`).to.equal(computeAddress(new SigningKey(key).publicKey));
      }
    }
    // The memory is keyed by the key's bytes, not by the array object.
    const copy = Uint8Array.from(keys[0] as Uint8Array);
    expect(addressOfPrivateKey(copy)).to.equal(computeAddress(new SigningKey(copy).publicKey));
    // A key that is a view into a larger buffer.
    const wide = new Uint8Array(64);
    wide.set(keys[1] as Uint8Array, 16);
    expect(addressOfPrivateKey(wide.subarray(16, 48))).to.equal(
      computeAddress(new SigningKey(keys[1] as Uint8Array).publicKey),
    );
  });

  it("hashes as @noble/hashes' Keccak-256, across the 136-byte block boundary", () => {
    const rng = createRng(12);
    for (const n of [0, 1, 31, 32, 64, 135, 136, 137, 271, 272, 273, 1000]) {
      const data = bytes(rng, n);
      expect(Buffer.from(keccak256Bytes(data)).toString("hex"), `${n} bytes`).to.equal(
        Buffer.from(keccak_256(data)).toString("hex"),
      );
      // A view into a larger buffer hashes only its own bytes.
      const inner = new Uint8Array(n + 8);
      inner.set(data, 4);
      expect(Buffer.from(keccak256Bytes(inner.subarray(4, 4 + n))).equals(Buffer.from(keccak_256(data)))).to.equal(
        true,
      );
    }
  });

  it("leaves ethers' keccak256 answers unchanged once registered", () => {
    const before = [keccak256("0x"), keccak256("0x1337"), id("OfferPosted(uint256,uint256,uint256)")];
    useFastKeccakInEthers();
    useFastKeccakInEthers();
    expect([keccak256("0x"), keccak256("0x1337"), id("OfferPosted(uint256,uint256,uint256)")]).to.deep.equal(before);
    expect(keccak256("0x")).to.equal("0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  });
});
