"""The image grid: panes, levels, orientation and the words drawn on them."""
