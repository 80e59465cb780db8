"""The docks around the grid: controls, display, k-space and mask, metrics and scan facts."""
