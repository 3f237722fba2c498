"""Small bad CIFs the tests feed to the CLI and the readers (one home for each)."""

P1_HEADER = """data_x
_cell_length_a 4
_cell_length_b 4
_cell_length_c 4
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
"""

BROKEN_CIF = "data_broken\n_cell_length_a nonsense\n"
# an element pymatgen does not know
UNKNOWN_ELEMENT_CIF = P1_HEADER + "Xx1 Xx 0 0 0\nNa1 Na 0.5 0.5 0.5\n"
# a half-occupied site
DISORDERED_CIF = P1_HEADER + "_atom_site_occupancy\nNa1 Na 0 0 0 0.5\nCl1 Cl 0.5 0.5 0.5 1\n"
