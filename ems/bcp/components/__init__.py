"""One function per component of the BCP MILP; each docstring gives its equations."""
