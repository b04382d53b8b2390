"""Market data at the ground floor: the JEPX spot-market file and the retailer's price terms."""
