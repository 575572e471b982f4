"""Models: image embedders and taggers behind one small protocol (see base.py)."""
