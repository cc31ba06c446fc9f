import { expect } from "chai";
import { AbiCoder, keccak256 } from "ethers";
import { CIRCUITS } from "../../circuits/instances";
import { isError } from "../../common/errors";
import { ZK } from "../../common/zk-params";
import { addressFromField, extDataHash, withdrawalPublicSignals } from "../../mixer/public-signals";

const A = "0x1111111111111111111111111111111111111111";
const B = "0x2222222222222222222222222222222222222222";

function expectInvalid(f: () => unknown, parameter: string): void {
  try {
    f();
  } catch (e) {
    expect(isError(e, "INVALID_ARGUMENT"), String(e)).to.equal(true);
    expect((e as Error).message).to.contain(parameter);
    return;
  }
  expect.fail("accepted");
}

describe("mixer/public-signals", () => {
  it("hashes recipient, relayer and fee as abi.encode(address, address, uint64) mod p", () => {
    const raw = BigInt(keccak256(AbiCoder.defaultAbiCoder().encode(["address", "address", "uint64"], [A, B, 25n])));
    expect(extDataHash(A, B, 25n)).to.equal(raw % ZK.fieldModulus);
    expect(extDataHash(A.toUpperCase().replace("0X", "0x"), B, 25n)).to.equal(extDataHash(A, B, 25n));
    expect(extDataHash(B, A, 25n)).to.not.equal(extDataHash(A, B, 25n));
    expect(extDataHash(A, B, 26n)).to.not.equal(extDataHash(A, B, 25n));
  });

  it("refuses a bad address or a fee outside uint64, naming the parameter", () => {
    expectInvalid(() => extDataHash("0x123", B, 1n), "recipient");
    expectInvalid(() => extDataHash(A, "not an address", 1n), "relayer");
    expectInvalid(() => extDataHash(A, B, -1n), "fee");
    expectInvalid(() => extDataHash(A, B, 1n << 64n), "fee");
  });

  it("lays the signals out in the verifier order of circuits/instances.ts", () => {
    const mixer = withdrawalPublicSignals("mixer-withdraw", {
      root: 7n,
      nullifierHash: 8n,
      recipient: A,
      relayer: B,
      fee: 9n,
    });
    expect(CIRCUITS["mixer-withdraw"].publicInputs).to.deep.equal(["root", "nullifierHash", "extDataHash"]);
    expect(mixer).to.deep.equal([7n, 8n, extDataHash(A, B, 9n)]);
    const allowance = withdrawalPublicSignals("allowance-withdraw", {
      root: 1n,
      nullifierHash: 2n,
      powerW: 3n,
      start: 4n,
      end: 5n,
      recipient: A,
      newCommitments: [10n, 0n, 12n],
    });
    expect(allowance).to.deep.equal([10n, 0n, 12n, 1n, 2n, 3n, 4n, 5n, BigInt(A)]);
  });

  it("refuses a value outside the field", () => {
    expectInvalid(
      () =>
        withdrawalPublicSignals("mixer-withdraw", {
          root: ZK.fieldModulus,
          nullifierHash: 8n,
          recipient: A,
          relayer: B,
          fee: 9n,
        }),
      "root",
    );
  });

  it("reads an address given as a uint160 or as text", () => {
    expect(addressFromField(BigInt(A), "x")).to.equal(A);
    expect(addressFromField(A, "x")).to.equal(A);
    expect(addressFromField(0n, "x")).to.equal("0x0000000000000000000000000000000000000000");
    expectInvalid(() => addressFromField(1n << 160n, "inputs.recipient"), "inputs.recipient");
  });
});
