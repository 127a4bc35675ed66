"""The pure-PyTorch engine. Nothing here imports scikit-learn."""
