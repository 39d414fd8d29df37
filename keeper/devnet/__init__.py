"""The embedded devnet: anvil carrying the real Perp v2, Uniswap V2/V3, WETH9 and Chainlink-style
aggregators, deployed from their official npm artifacts, plus a market-activity driver."""
