import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { expect } from "chai";
import { Wallet, ZeroAddress } from "ethers";
import hre from "hardhat";
import { deployMarketFixture, splitParts } from "../fixtures/market";

const Open = 1n;
const Rescinded = 2n;
const Accepted = 3n;
const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MIN = -(2n ** 63n);

/** Market with a production asset (0) for alice and a consumption asset (1) plus money for bob. */
async function mintedFixture() {
  const f = await deployMarketFixture();
  await f.market.addEnergyAsset(f.alice.address, 5000, 10, 15);
  await f.market.addEnergyAsset(f.bob.address, -3000, 12, 17);
  await f.market.addFinancialBalance(f.bob.address, 1_000_000);
  return f;
}

async function askFixture() {
  const f = await mintedFixture();
  await f.market.connect(f.alice).postOffer(0, 2);
  return f;
}

describe("EnergyMarket # constructor and minters", () => {
  it("makes the deployer the DSO", async () => {
    const { market, dso } = await loadFixture(deployMarketFixture);
    expect(await market.dso()).to.equal(dso.address);
    expect(await market.assetCount()).to.equal(0n);
    expect(await market.offerCount()).to.equal(0n);
  });

  it("lets the DSO authorise and revoke a minter", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await expect(market.setMinter(alice.address, true)).to.emit(market, "MinterSet").withArgs(alice.address, true);
    expect(await market.isMinter(alice.address)).to.equal(true);
    await market.connect(alice).addEnergyAsset(alice.address, 1, 0, 0);
    await market.setMinter(alice.address, false);
    await expect(market.connect(alice).addEnergyAsset(alice.address, 1, 0, 0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotMinter")
      .withArgs(alice.address);
  });

  it("rejects setMinter from anyone but the DSO", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await expect(market.connect(alice).setMinter(alice.address, true))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotDSO")
      .withArgs(alice.address);
  });

  it("rejects the zero address as a minter", async () => {
    const { market } = await loadFixture(deployMarketFixture);
    await expect(market.setMinter(ZeroAddress, true)).to.be.revertedWithCustomError(
      market,
      "EnergyMarket__ZeroAddress",
    );
  });
});

describe("EnergyMarket # addEnergyAsset", () => {
  it("creates an asset owned by the anonymous address and emits AssetAdded", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await expect(market.addEnergyAsset(alice.address, -700, 3, 5))
      .to.emit(market, "AssetAdded")
      .withArgs(alice.address, 0n, -700n, 3n, 5n);
    expect(await market.energyAsset(0)).to.deep.equal([alice.address, -700n, 3n, 5n, false]);
    expect(await market.assetCount()).to.equal(1n);
  });

  it("rejects callers that are neither DSO nor minter", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await expect(market.connect(alice).addEnergyAsset(alice.address, 1, 0, 0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotMinter")
      .withArgs(alice.address);
  });

  it("rejects zero power and the int64 minimum", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await expect(market.addEnergyAsset(alice.address, 0, 0, 0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InvalidPower")
      .withArgs(0n);
    await expect(market.addEnergyAsset(alice.address, INT64_MIN, 0, 0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InvalidPower")
      .withArgs(INT64_MIN);
  });

  it("rejects start after end", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await expect(market.addEnergyAsset(alice.address, 5, 4, 3))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InvalidInterval")
      .withArgs(4n, 3n);
  });

  it("rejects the zero address as owner", async () => {
    const { market } = await loadFixture(deployMarketFixture);
    await expect(market.addEnergyAsset(ZeroAddress, 5, 0, 0)).to.be.revertedWithCustomError(
      market,
      "EnergyMarket__ZeroAddress",
    );
  });
});

describe("EnergyMarket # addEnergyAssets", () => {
  it("mints a batch with consecutive IDs", async () => {
    const { market, alice, bob } = await loadFixture(deployMarketFixture);
    await market.addEnergyAsset(alice.address, 1, 0, 0);
    const mints = [
      { anonAddress: alice.address, powerW: 100, start: 1, end: 2 },
      { anonAddress: bob.address, powerW: -50, start: 3, end: 3 },
    ];
    expect(await market.addEnergyAssets.staticCall(mints)).to.equal(1n);
    await expect(market.addEnergyAssets(mints))
      .to.emit(market, "AssetAdded")
      .withArgs(alice.address, 1n, 100n, 1n, 2n)
      .and.to.emit(market, "AssetAdded")
      .withArgs(bob.address, 2n, -50n, 3n, 3n);
    expect(await market.assetCount()).to.equal(3n);
  });

  it("validates every element and rejects non-minters", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    const good = { anonAddress: alice.address, powerW: 1, start: 0, end: 0 };
    await expect(market.addEnergyAssets([good, { ...good, powerW: 0 }]))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InvalidPower")
      .withArgs(0n);
    await expect(market.addEnergyAssets([{ ...good, start: 2, end: 1 }]))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InvalidInterval")
      .withArgs(2n, 1n);
    await expect(market.addEnergyAssets([{ ...good, anonAddress: ZeroAddress }])).to.be.revertedWithCustomError(
      market,
      "EnergyMarket__ZeroAddress",
    );
    await expect(market.connect(alice).addEnergyAssets([good]))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotMinter")
      .withArgs(alice.address);
  });
});

describe("EnergyMarket # addFinancialBalance and addFinancialBalances", () => {
  it("credits money and emits FinancialAdded", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await expect(market.addFinancialBalance(alice.address, 40))
      .to.emit(market, "FinancialAdded")
      .withArgs(alice.address, 40n);
    await market.addFinancialBalance(alice.address, 2);
    expect(await market.financialBalance(alice.address)).to.equal(42n);
  });

  it("credits a batch", async () => {
    const { market, alice, bob } = await loadFixture(deployMarketFixture);
    await market.addFinancialBalances([alice.address, bob.address], [5, 7]);
    expect(await market.financialBalance(alice.address)).to.equal(5n);
    expect(await market.financialBalance(bob.address)).to.equal(7n);
  });

  it("rejects zero amounts, the zero address, length mismatches and non-minters", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await expect(market.addFinancialBalance(alice.address, 0)).to.be.revertedWithCustomError(
      market,
      "EnergyMarket__ZeroAmount",
    );
    await expect(market.addFinancialBalance(ZeroAddress, 1)).to.be.revertedWithCustomError(
      market,
      "EnergyMarket__ZeroAddress",
    );
    await expect(market.addFinancialBalances([alice.address], [1, 2]))
      .to.be.revertedWithCustomError(market, "EnergyMarket__LengthMismatch")
      .withArgs(1n, 2n);
    await expect(market.connect(alice).addFinancialBalance(alice.address, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotMinter")
      .withArgs(alice.address);
    await expect(market.connect(alice).addFinancialBalances([alice.address], [1]))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotMinter")
      .withArgs(alice.address);
  });

  it("rejects a credit that would overflow a uint64 balance", async () => {
    const { market, alice } = await loadFixture(deployMarketFixture);
    await market.addFinancialBalance(alice.address, UINT64_MAX);
    await expect(market.addFinancialBalance(alice.address, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__AmountOverflow")
      .withArgs(UINT64_MAX + 1n);
  });
});

describe("EnergyMarket # postOffer", () => {
  it("posts an ask, locks the asset and locks no money", async () => {
    const { market, alice } = await loadFixture(mintedFixture);
    expect(await market.connect(alice).postOffer.staticCall(0, 2)).to.equal(0n);
    await expect(market.connect(alice).postOffer(0, 2)).to.emit(market, "OfferPosted").withArgs(0n, 0n, 2n);
    expect((await market.energyAsset(0))[4]).to.equal(true);
    expect(await market.offer(0)).to.deep.equal([alice.address, 0n, 2n, Open]);
    expect(await market.offerCount()).to.equal(1n);
    expect(await market.financialBalance(alice.address)).to.equal(0n);
  });

  it("posts a bid and locks its full cost: price x |power| x intervals", async () => {
    const { market, bob } = await loadFixture(mintedFixture);
    await market.connect(bob).postOffer(1, 3); // 3 x 3000 W x 6 intervals
    expect(await market.financialBalance(bob.address)).to.equal(1_000_000n - 54_000n);
  });

  it("rejects a bid its poster cannot pay for", async () => {
    const { market, bob } = await loadFixture(mintedFixture);
    await expect(market.connect(bob).postOffer(1, 100))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InsufficientBalance")
      .withArgs(bob.address, 1_000_000n, 1_800_000n);
  });

  it("rejects unknown assets, other owners' assets and locked assets", async () => {
    const { market, alice, bob } = await loadFixture(mintedFixture);
    await expect(market.connect(alice).postOffer(9, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__UnknownAsset")
      .withArgs(9n);
    await expect(market.connect(bob).postOffer(0, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotAssetOwner")
      .withArgs(0n, bob.address);
    await market.connect(alice).postOffer(0, 1);
    await expect(market.connect(alice).postOffer(0, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__AssetLocked")
      .withArgs(0n);
  });
});

describe("EnergyMarket # rescindOffer", () => {
  it("unlocks an ask", async () => {
    const { market, alice } = await loadFixture(askFixture);
    await expect(market.connect(alice).rescindOffer(0)).to.emit(market, "OfferRescinded").withArgs(0n);
    expect((await market.energyAsset(0))[4]).to.equal(false);
    expect((await market.offer(0))[3]).to.equal(Rescinded);
  });

  it("returns a bid's locked money", async () => {
    const { market, bob } = await loadFixture(mintedFixture);
    await market.connect(bob).postOffer(1, 3);
    await market.connect(bob).rescindOffer(0);
    expect(await market.financialBalance(bob.address)).to.equal(1_000_000n);
  });

  it("rejects anyone but the poster, unknown offers and closed offers", async () => {
    const { market, alice, bob } = await loadFixture(askFixture);
    await expect(market.connect(bob).rescindOffer(0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotOfferPoster")
      .withArgs(0n, bob.address);
    await expect(market.connect(alice).rescindOffer(5))
      .to.be.revertedWithCustomError(market, "EnergyMarket__UnknownOffer")
      .withArgs(5n);
    await market.connect(alice).rescindOffer(0);
    await expect(market.connect(alice).rescindOffer(0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__OfferNotOpen")
      .withArgs(0n, Rescinded);
  });
});

describe("EnergyMarket # acceptOffer", () => {
  it("settles an ask with partial overlap in time and power", async () => {
    // alice: +5000 W over 10-15 (ask at 2); bob: -3000 W over 12-17. Overlap 12-15, 3000 W.
    const { market, alice, bob } = await loadFixture(askFixture);
    const tx = market.connect(bob).acceptOffer(0, 1);
    await expect(tx)
      .to.emit(market, "OfferAccepted")
      .withArgs(0n, 1n, 2n * 3000n * 4n);
    const parts = splitParts(market, await (await tx).wait());
    expect(parts.map((p) => [p.parentID, p.owner, p.powerW, p.start, p.end])).to.deep.equal([
      [0n, bob.address, 3000n, 12n, 15n], // the traded production goes to the accepter
      [0n, alice.address, 5000n, 10n, 11n], // before the overlap stays with alice
      [0n, alice.address, 2000n, 12n, 15n], // leftover power across the whole overlap stays too
      [1n, alice.address, -3000n, 12n, 15n], // the traded consumption goes to the poster
      [1n, bob.address, -3000n, 16n, 17n], // after the overlap stays with bob
    ]);
    expect(parts.map((p) => p.assetID)).to.deep.equal([2n, 3n, 4n, 5n, 6n]);
    expect(await market.financialBalance(alice.address)).to.equal(24_000n);
    expect(await market.financialBalance(bob.address)).to.equal(1_000_000n - 24_000n);
    expect((await market.offer(0))[3]).to.equal(Accepted);
  });

  it("retires both traded assets", async () => {
    const { market, bob } = await loadFixture(askFixture);
    await market.connect(bob).acceptOffer(0, 1);
    expect(await market.energyAsset(0)).to.deep.equal([ZeroAddress, 5000n, 10n, 15n, false]);
    expect((await market.energyAsset(1))[0]).to.equal(ZeroAddress);
  });

  it("exchanges whole assets when shapes match exactly", async () => {
    const { market, alice, bob } = await loadFixture(deployMarketFixture);
    await market.addEnergyAsset(alice.address, 100, 4, 4);
    await market.addEnergyAsset(bob.address, -100, 4, 4);
    await market.addFinancialBalance(bob.address, 1000);
    await market.connect(alice).postOffer(0, 7);
    const parts = splitParts(market, await (await market.connect(bob).acceptOffer(0, 1)).wait());
    expect(parts.map((p) => [p.owner, p.powerW])).to.deep.equal([
      [bob.address, 100n],
      [alice.address, -100n],
    ]);
    expect(await market.financialBalance(alice.address)).to.equal(700n);
  });

  it("leaves the accepter's leftover power with the accepter", async () => {
    const { market, alice, bob } = await loadFixture(deployMarketFixture);
    await market.addEnergyAsset(alice.address, 100, 0, 1);
    await market.addEnergyAsset(bob.address, -250, 0, 1);
    await market.addFinancialBalance(bob.address, 1000);
    await market.connect(alice).postOffer(0, 1);
    const parts = splitParts(market, await (await market.connect(bob).acceptOffer(0, 1)).wait());
    expect(parts.map((p) => [p.parentID, p.owner, p.powerW, p.start, p.end])).to.deep.equal([
      [0n, bob.address, 100n, 0n, 1n],
      [1n, alice.address, -100n, 0n, 1n],
      [1n, bob.address, -150n, 0n, 1n],
    ]);
  });

  it("settles a bid: the seller is paid the traded part and the rest of the lock returns", async () => {
    // bob bids -3000 W over 12-17 at 3 (locks 54,000); alice sells 5000 W over 10-15: 3000 W x 4 traded.
    const { market, alice, bob } = await loadFixture(mintedFixture);
    await market.connect(bob).postOffer(1, 3);
    const tx = market.connect(alice).acceptOffer(0, 0);
    await expect(tx).to.emit(market, "OfferAccepted").withArgs(0n, 0n, 36_000n);
    const parts = splitParts(market, await (await tx).wait());
    expect(parts.map((p) => [p.parentID, p.owner, p.powerW, p.start, p.end])).to.deep.equal([
      [1n, alice.address, -3000n, 12n, 15n],
      [1n, bob.address, -3000n, 16n, 17n],
      [0n, bob.address, 3000n, 12n, 15n],
      [0n, alice.address, 5000n, 10n, 11n],
      [0n, alice.address, 2000n, 12n, 15n],
    ]);
    expect(await market.financialBalance(alice.address)).to.equal(36_000n);
    expect(await market.financialBalance(bob.address)).to.equal(1_000_000n - 36_000n);
  });

  it("rejects assets that do not overlap in time", async () => {
    const { market, alice, bob } = await loadFixture(deployMarketFixture);
    await market.addEnergyAsset(alice.address, 100, 0, 3);
    await market.addEnergyAsset(bob.address, -100, 4, 6);
    await market.connect(alice).postOffer(0, 1);
    await expect(market.connect(bob).acceptOffer(0, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NoOverlap")
      .withArgs(0n, 1n);
  });

  it("rejects an asset of the same direction as the offer", async () => {
    const { market, bob } = await loadFixture(askFixture);
    await market.addEnergyAsset(bob.address, 10, 10, 10);
    await expect(market.connect(bob).acceptOffer(0, 2))
      .to.be.revertedWithCustomError(market, "EnergyMarket__SameDirection")
      .withArgs(0n, 2n);
  });

  it("rejects a buyer who cannot pay for an ask", async () => {
    const { market, carol } = await loadFixture(askFixture);
    await market.addEnergyAsset(carol.address, -10, 10, 10);
    await market.addFinancialBalance(carol.address, 19);
    await expect(market.connect(carol).acceptOffer(0, 2))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InsufficientBalance")
      .withArgs(carol.address, 19n, 20n);
  });

  it("rejects unknown, closed and locked inputs and assets the caller does not own", async () => {
    const { market, alice, bob } = await loadFixture(askFixture);
    await expect(market.connect(bob).acceptOffer(3, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__UnknownOffer")
      .withArgs(3n);
    await expect(market.connect(bob).acceptOffer(0, 8))
      .to.be.revertedWithCustomError(market, "EnergyMarket__UnknownAsset")
      .withArgs(8n);
    await expect(market.connect(alice).acceptOffer(0, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotAssetOwner")
      .withArgs(1n, alice.address);
    // an asset locked in its own offer cannot be used to accept another
    await market.connect(bob).postOffer(1, 1);
    await expect(market.connect(bob).acceptOffer(0, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__AssetLocked")
      .withArgs(1n);
    await market.connect(bob).rescindOffer(1);
    await market.connect(bob).acceptOffer(0, 1);
    await expect(market.connect(bob).acceptOffer(0, 6))
      .to.be.revertedWithCustomError(market, "EnergyMarket__OfferNotOpen")
      .withArgs(0n, Accepted);
  });

  it("does not let a retired asset be traded again", async () => {
    const { market, alice, bob } = await loadFixture(askFixture);
    await market.connect(bob).acceptOffer(0, 1);
    await expect(market.connect(alice).postOffer(0, 1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotAssetOwner")
      .withArgs(0n, alice.address);
  });
});

describe("EnergyMarket # depositEnergyAsset", () => {
  it("retires the asset and emits AssetDeposited", async () => {
    const { market, alice } = await loadFixture(mintedFixture);
    await expect(market.connect(alice).depositEnergyAsset(0))
      .to.emit(market, "AssetDeposited")
      .withArgs(alice.address, 0n);
    expect((await market.energyAsset(0))[0]).to.equal(ZeroAddress);
    await expect(market.connect(alice).depositEnergyAsset(0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotAssetOwner")
      .withArgs(0n, alice.address);
  });

  it("rejects locked assets, other owners and unknown assets", async () => {
    const { market, alice, bob } = await loadFixture(askFixture);
    await expect(market.connect(alice).depositEnergyAsset(0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__AssetLocked")
      .withArgs(0n);
    await expect(market.connect(alice).depositEnergyAsset(1))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotAssetOwner")
      .withArgs(1n, alice.address);
    await expect(market.connect(bob).depositEnergyAsset(42))
      .to.be.revertedWithCustomError(market, "EnergyMarket__UnknownAsset")
      .withArgs(42n);
  });
});

describe("EnergyMarket # fundGas", () => {
  it("sends each address its ether, a GasFunded each, and keeps nothing", async () => {
    const { market, dso } = await loadFixture(deployMarketFixture);
    const to = [Wallet.createRandom().address, Wallet.createRandom().address];
    const tx = market.connect(dso).fundGas(to, 1000n, { value: 2000n });
    await expect(tx).to.emit(market, "GasFunded").withArgs(to[0], 1000n);
    await expect(tx).to.emit(market, "GasFunded").withArgs(to[1], 1000n);
    await expect(tx).to.changeEtherBalances([dso, ...to], [-2000n, 1000n, 1000n]);
    expect(await hre.ethers.provider.getBalance(await market.getAddress())).to.equal(0n);
  });

  it("is the DSO's only, and wants exactly the ether it hands out", async () => {
    const { market, dso, alice } = await loadFixture(deployMarketFixture);
    const to = [alice.address];
    await expect(market.connect(alice).fundGas(to, 1n, { value: 1n }))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotDSO")
      .withArgs(alice.address);
    await expect(market.connect(dso).fundGas(to, 5n, { value: 4n }))
      .to.be.revertedWithCustomError(market, "EnergyMarket__WrongValue")
      .withArgs(4n, 5n);
    await expect(market.connect(dso).fundGas([ZeroAddress], 5n, { value: 5n })).to.be.revertedWithCustomError(
      market,
      "EnergyMarket__ZeroAddress",
    );
    // A recipient that refuses ether (a contract without receive) fails the whole call.
    await expect(market.connect(dso).fundGas([await market.getAddress()], 5n, { value: 5n }))
      .to.be.revertedWithCustomError(market, "EnergyMarket__GasTransferFailed")
      .withArgs(await market.getAddress());
  });
});

describe("EnergyMarket # depositBatch", () => {
  it("retires every asset of the batch and debits the money: the events of the separate calls, in order", async () => {
    const { market, alice, bob } = await loadFixture(mintedFixture);
    await market.addEnergyAsset(bob.address, 2000, 20, 21);
    await market.addEnergyAsset(bob.address, 1000, 22, 22);
    const tx = market.connect(bob).depositBatch([3, 1, 2], 400);
    await expect(tx).to.emit(market, "AssetDeposited").withArgs(bob.address, 3n);
    await expect(tx).to.emit(market, "AssetDeposited").withArgs(bob.address, 1n);
    await expect(tx).to.emit(market, "AssetDeposited").withArgs(bob.address, 2n);
    await expect(tx).to.emit(market, "FinancialDeposited").withArgs(bob.address, 400n);
    const names = (await (await tx).wait())?.logs.map((l) => market.interface.parseLog(l)?.name);
    expect(names).to.deep.equal(["AssetDeposited", "AssetDeposited", "AssetDeposited", "FinancialDeposited"]);
    for (const id of [1, 2, 3]) expect((await market.energyAsset(id))[0]).to.equal(ZeroAddress);
    expect(await market.financialBalance(bob.address)).to.equal(999_600n);
    // Either part alone.
    await expect(market.connect(alice).depositBatch([0], 0))
      .to.emit(market, "AssetDeposited")
      .withArgs(alice.address, 0n);
    await expect(market.connect(bob).depositBatch([], 600))
      .to.emit(market, "FinancialDeposited")
      .withArgs(bob.address, 600n);
  });

  it("is all or none: an asset not the caller's, locked, unknown or repeated, or too much money, reverts it all", async () => {
    const { market, alice, bob } = await loadFixture(askFixture);
    await market.addEnergyAsset(alice.address, 2000, 20, 21);
    await market.addFinancialBalance(alice.address, 50);
    const free = (await market.assetCount()) - 1n;
    await expect(market.connect(alice).depositBatch([free, 0], 0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__AssetLocked")
      .withArgs(0n);
    await expect(market.connect(alice).depositBatch([free, 1], 0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotAssetOwner")
      .withArgs(1n, alice.address);
    await expect(market.connect(alice).depositBatch([free, 42], 0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__UnknownAsset")
      .withArgs(42n);
    await expect(market.connect(alice).depositBatch([free, free], 0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__NotAssetOwner")
      .withArgs(free, alice.address);
    await expect(market.connect(alice).depositBatch([free], 51))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InsufficientBalance")
      .withArgs(alice.address, 50n, 51n);
    expect((await market.energyAsset(free))[0]).to.equal(alice.address);
    expect(await market.financialBalance(alice.address)).to.equal(50n);
    await expect(market.connect(bob).depositBatch([], 0)).to.be.revertedWithCustomError(
      market,
      "EnergyMarket__ZeroAmount",
    );
  });
});

describe("EnergyMarket # depositFinancial", () => {
  it("removes money and emits FinancialDeposited", async () => {
    const { market, bob } = await loadFixture(mintedFixture);
    await expect(market.connect(bob).depositFinancial(400))
      .to.emit(market, "FinancialDeposited")
      .withArgs(bob.address, 400n);
    expect(await market.financialBalance(bob.address)).to.equal(999_600n);
  });

  it("rejects zero and more than the balance", async () => {
    const { market, bob } = await loadFixture(mintedFixture);
    await expect(market.connect(bob).depositFinancial(0)).to.be.revertedWithCustomError(
      market,
      "EnergyMarket__ZeroAmount",
    );
    await expect(market.connect(bob).depositFinancial(1_000_001))
      .to.be.revertedWithCustomError(market, "EnergyMarket__InsufficientBalance")
      .withArgs(bob.address, 1_000_000n, 1_000_001n);
  });
});

describe("EnergyMarket # views", () => {
  it("reject unknown IDs with the ID", async () => {
    const { market } = await loadFixture(deployMarketFixture);
    await expect(market.energyAsset(0))
      .to.be.revertedWithCustomError(market, "EnergyMarket__UnknownAsset")
      .withArgs(0n);
    await expect(market.offer(0)).to.be.revertedWithCustomError(market, "EnergyMarket__UnknownOffer").withArgs(0n);
  });

  it("read zero for an address that never held money", async () => {
    const { market, carol } = await loadFixture(deployMarketFixture);
    expect(await market.financialBalance(carol.address)).to.equal(0n);
  });
});
