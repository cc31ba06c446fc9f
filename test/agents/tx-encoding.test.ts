import { expect } from "chai";
import { getBytes, keccak256, Transaction, type TransactionLike, Wallet } from "ethers";
import { decodeRawTxFields, signTransactionWith, type TxFields } from "../../agents/tx-encoding";
import { createRng } from "../../common/rng";

describe("signTransactionWith # the bytes ethers' Wallet signs", () => {
  const rng = createRng(23);
  const hex = (bytes: number) => {
    let h = "0x";
    for (let i = 0; i < bytes; i++) h += rng.int(0, 255).toString(16).padStart(2, "0");
    return h;
  };
  /** Values at the RLP boundaries (0, single bytes below and at 0x80, 55/56-byte strings) and random ones. */
  const amount = (): bigint => {
    const picks = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0x100n, 10n ** 18n, 2n ** 255n + 3n];
    return rng.next() < 0.5 ? (picks[rng.int(0, picks.length - 1)] as bigint) : BigInt(hex(rng.int(1, 32)));
  };
  const dataLengths = [0, 1, 4, 36, 55, 56, 68, 200, 255, 256, 1200];

  it("encodes EIP-1559 transactions byte for byte as ethers, with the same hash, over random fields", async () => {
    for (let n = 0; n < 300; n++) {
      const wallet = new Wallet(hex(32));
      const data = n % 7 === 0 ? hex(1).replace(/^0x../, "0x7f") : hex(dataLengths[n % dataLengths.length] as number);
      const [fee1, fee2] = [amount(), amount()];
      const fields: TxFields = {
        type: 2,
        chainId: [1n, 31337n, 2n ** 40n][n % 3] as bigint,
        nonce: [0, 1, 127, 128, 1_000_000][n % 5] as number,
        maxPriorityFeePerGas: fee1 < fee2 ? fee1 : fee2,
        maxFeePerGas: fee1 < fee2 ? fee2 : fee1,
        gasLimit: [21_000n, 500_000n, 120_000_000n][n % 3] as bigint,
        to: n % 11 === 0 ? null : wallet.address.replace(/./g, (c, i) => (i > 1 && n % 2 ? c.toLowerCase() : c)),
        value: amount(),
        data,
      };
      const ours = signTransactionWith(getBytes(wallet.privateKey), fields);
      const theirs = await wallet.signTransaction(fields);
      expect(ours.serialized, `case ${n}`).to.equal(theirs);
      expect(ours.hash, `case ${n}`).to.equal(keccak256(theirs));
      const parsed = Transaction.from(theirs);
      expect(ours.tx.signature?.serialized).to.equal(parsed.signature?.serialized);
      expect(decodeRawTxFields(theirs), `case ${n}`).to.deep.equal({
        nonce: BigInt(parsed.nonce),
        to: parsed.to?.toLowerCase() ?? null,
        value: parsed.value,
        input: parsed.data,
      });
    }
  });

  it("signs other types (legacy, an access list) through ethers, with the same bytes", async () => {
    const wallet = new Wallet(hex(32));
    const cases: TransactionLike[] = [
      { type: 0, chainId: 31337n, nonce: 3, gasPrice: 7n, gasLimit: 21_000n, to: wallet.address, value: 1n },
      {
        type: 2,
        chainId: 1n,
        nonce: 0,
        maxFeePerGas: 9n,
        maxPriorityFeePerGas: 1n,
        gasLimit: 50_000n,
        to: wallet.address,
        accessList: [{ address: wallet.address, storageKeys: [`0x${"11".repeat(32)}`] }],
      },
    ];
    for (const fields of cases) {
      const ours = signTransactionWith(getBytes(wallet.privateKey), fields);
      expect(ours.serialized).to.equal(await wallet.signTransaction(fields));
      expect(ours.hash).to.equal(keccak256(ours.serialized));
      const parsed = Transaction.from(ours.serialized);
      expect(decodeRawTxFields(ours.serialized)).to.deep.equal({
        nonce: BigInt(parsed.nonce),
        to: parsed.to?.toLowerCase() ?? null,
        value: parsed.value,
        input: parsed.data,
      });
    }
  });

  it("refuses a negative field and a priority fee above the fee cap, naming them", () => {
    const wallet = new Wallet(hex(32));
    const sign = (fields: Partial<TransactionLike>) =>
      signTransactionWith(getBytes(wallet.privateKey), {
        type: 2,
        chainId: 1n,
        nonce: 0,
        maxFeePerGas: 1n,
        maxPriorityFeePerGas: 1n,
        gasLimit: 21_000n,
        to: wallet.address,
        ...fields,
      });
    expect(() => sign({ maxPriorityFeePerGas: 2n })).to.throw(/maxPriorityFeePerGas: 2 is more than maxFeePerGas 1/);
    expect(() => sign({ value: -1n })).to.throw(/value: -1 is negative/);
  });

  it("refuses malformed raw transactions, naming what is wrong", () => {
    expect(() => decodeRawTxFields("0x02zz")).to.throw(/not an even-length hex string/);
    expect(() => decodeRawTxFields("0x05c0")).to.throw(/type 5 is not decoded here/);
    expect(() => decodeRawTxFields("0x02c3")).to.throw(/not one RLP list/);
    expect(() => decodeRawTxFields("0x02c180")).to.throw(/has no field/);
  });
});
