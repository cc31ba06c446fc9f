import { type ErrorDescription, type EventFragment, getAddress, type ParamType, Result } from "ethers";
import { revertDataOf } from "../common/errors";
import { EnergyMarket__factory } from "../typechain-types";

const MARKET = EnergyMarket__factory.createInterface();

interface EventDecoder {
  name: string;
  inputs: readonly ParamType[];
  names: string[];
  indexed: ParamType[];
  plain: ParamType[];
}

/**
 * By topic, computed once. ethers' Interface.parseLog finds the event by hashing every event
 * signature of the ABI again on each call, and decodeEventLog hashes the one it found again to
 * check it: a dozen Keccak hashes per log, for logs that every agent of a simulation (the DSO,
 * each household, the ledger) decodes.
 */
const DECODERS = new Map<string, EventDecoder>();
MARKET.forEachEvent((e: EventFragment) => {
  DECODERS.set(e.topicHash.toLowerCase(), {
    name: e.name,
    inputs: e.inputs,
    names: e.inputs.map((p) => p.name),
    indexed: e.inputs.filter((p) => p.indexed),
    plain: e.inputs.filter((p) => !p.indexed),
  });
});

/**
 * Checksummed addresses by lower-case hex. getAddress hashes each one (Keccak), and the same few
 * thousand pseudonyms appear in log after log (and in the ledger's transactions); cleared when it
 * grows large, so memory stays bounded.
 */
const CHECKSUMMED = new Map<string, string>();

export function checksummed(lowerHex: string): string {
  let a = CHECKSUMMED.get(lowerHex);
  if (a === undefined) {
    if (CHECKSUMMED.size >= 200_000) CHECKSUMMED.clear();
    a = getAddress(lowerHex);
    CHECKSUMMED.set(lowerHex, a);
  }
  return a;
}

/**
 * One 32-byte ABI word (64 hex digits) as ethers' coders read a value type: uintN and intN masked
 * to N bits (intN then two's complement), bool as nonzero, address as the low 20 bytes with the
 * rest zero. Throws for an address word with high bits set, as ethers does.
 */
function decodeWord(type: string, word: string): unknown {
  if (type === "address") {
    if (!/^0{24}/.test(word)) throw new Error("address word with high bits");
    return checksummed(`0x${word.slice(24)}`);
  }
  if (type === "bool") return !/^0*$/.test(word);
  const m = /^(u?)int(\d*)$/.exec(type);
  if (!m) throw new Error(`no fast decoder for ${type}`);
  const bits = BigInt(m[2] === "" ? 256 : Number(m[2]));
  const v = BigInt.asUintN(Number(bits), BigInt(`0x${word}`));
  return m[1] === "u" ? v : BigInt.asIntN(Number(bits), v);
}

/**
 * An EnergyMarket log decoded as `MARKET.parseLog` decodes it (the event's name and its arguments,
 * by position and by name; tested equal), or null for a log that is none of the market's events
 * or does not decode. Every argument of the market's events is a value type, one word each, in
 * the topics (indexed) or the data, so each is read straight from its hex: ethers' AbiCoder
 * builds readers, proxies and checksums for each, and every agent decodes every log.
 */
export function decodeMarketLog(log: {
  topics: readonly string[];
  data: string;
}): { name: string; args: Result } | null {
  const topic = log.topics[0];
  const d = topic === undefined ? undefined : DECODERS.get(topic.toLowerCase());
  if (d === undefined || log.topics.length !== d.indexed.length + 1) return null;
  const data = log.data.startsWith("0x") ? log.data.slice(2) : log.data;
  if (data.length < 64 * d.plain.length || !/^[0-9a-fA-F]*$/.test(data)) return null;
  try {
    let i = 1;
    let p = 0;
    const values = d.inputs.map((input) => {
      if (input.indexed) {
        const t = log.topics[i++] as string;
        if (!/^0x[0-9a-fA-F]{64}$/.test(t)) throw new Error("bad topic");
        return decodeWord(input.type, t.slice(2));
      }
      const word = data.slice(64 * p, 64 * (p + 1));
      p++;
      return decodeWord(input.type, word);
    });
    return { name: d.name, args: Result.fromItems(values, d.names) };
  } catch {
    return null;
  }
}

/**
 * The market's custom error that a failed call or transaction carries (`e` as ethers or the
 * in-process Hardhat provider throws it), decoded; null when it carries none of the market's.
 */
export function marketErrorOf(e: unknown): ErrorDescription | null {
  for (const hex of revertDataOf(e)) {
    try {
      const decoded = MARKET.parseError(hex);
      if (decoded) return decoded;
    } catch {
      // not one of the market's errors
    }
  }
  return null;
}

/** A decoded error as one line: `Name(arg, ...)`. */
export function describeMarketError(d: ErrorDescription): string {
  return `${d.name}(${d.args.map(String).join(", ")})`;
}
