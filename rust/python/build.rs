// `cargo test` links libpython (pyo3 is built without `extension-module`, as maturin >= 1.9.4 advises);
// a pyenv Python keeps libpython outside the default loader path, so record it as an rpath.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
