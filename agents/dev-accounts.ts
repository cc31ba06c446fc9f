import { HDNodeWallet } from "ethers";

/**
 * The development mnemonic that hardhat node, anvil and the in-process Hardhat network fund: the
 * runners' DSO, relayer and "bank" accounts on local chains. Never for a real network.
 */
export const DEV_MNEMONIC = "test test test test test test test test test test test junk";

/** The private key of dev account `i` (m/44'/60'/0'/0/i). */
export function devKey(i: number): string {
  return HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).privateKey;
}
