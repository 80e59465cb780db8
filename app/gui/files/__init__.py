"""Files in and out: opening, recent files, checkpoint files, and the PNG, CSV and fastMRI exports."""
