//! The configuration file and `INLET_` variables: loading and checking never panic, and
//! whatever loads prints (redacted) as TOML that loads again.
#![no_main]
use inlet_fuzz::scratch_dir;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Up to the first NUL: the file; after it, one `KEY=value` variable.
    let (file, var) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let path = scratch_dir().join("inlet.toml");
    std::fs::write(&path, file).expect("write");
    let env: Vec<(String, String)> = var
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.split_once('='))
        .map(|(k, v)| (format!("INLET_{k}"), v.to_owned()))
        .into_iter()
        .collect();
    if let Ok(config) = inlet_config::load(Some(&path), env) {
        let _ = config.check();
        std::fs::write(&path, config.to_redacted_toml()).expect("write");
        inlet_config::load(Some(&path), Vec::new()).expect("printed configuration loads again");
    }
});
