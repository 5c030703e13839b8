//! mouton's CUDA kernels run on the CPU: the kernels' own source files (`src/layers/cuda/*.cu`,
//! the text NVRTC compiles on a GPU) are compiled with the host's C++ compiler and
//! `cuda_on_cpu.h`, launched on the tests' inputs as the layers launch them, and compared with
//! the CPU layers. This checks the kernels' arithmetic and indexing on every machine, CI
//! included; `tests/cuda_parity.rs` checks the real thing on a GPU. Without a C++20 compiler
//! (`$CXX`, else `c++`) the tests print `SKIPPED` and pass.
//!
//! Each set of source files is compiled once (kept in the target folder until it changes),
//! with a generated `main` that reads the buffers and a list of launches from files: the
//! kernels' signatures and the structs they take are read from the source.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

mod batch_norm;
mod fused_update;
mod layers;

/// A kernel source file of `src/layers/cuda/`, as NVRTC gets it.
fn kernel_source(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/layers/cuda")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// CUDA's `extern __shared__ T name[];` (dynamic shared memory) as a pointer to the
/// emulator's buffer; everything else is C++ already, given the header.
fn for_the_host(src: &str) -> String {
    let mut out = String::new();
    for line in src.lines() {
        let t = line.trim_start();
        match t.strip_prefix("extern __shared__ ") {
            Some(rest) => {
                let decl = rest.trim_end().strip_suffix("[];").expect("T name[];");
                let (ty, name) = decl.rsplit_once(' ').expect("a type and a name");
                let indent = &line[..line.len() - t.len()];
                let _ = writeln!(
                    out,
                    "{indent}{ty}* {name} = ({ty}*)cuda_on_cpu_dynamic_shared;"
                );
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// A kernel's name and parameters (C type, with `*` for pointers).
struct Kernel {
    name: String,
    params: Vec<String>,
}

/// The `extern "C" __global__` kernels of `src`.
fn kernels(src: &str) -> Vec<Kernel> {
    let mut found = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find("extern \"C\" __global__ void ") {
        rest = &rest[at + "extern \"C\" __global__ void ".len()..];
        let open = rest.find('(').expect("a parameter list");
        let close = rest.find(')').expect("a parameter list");
        let params = rest[open + 1..close]
            .split(',')
            .map(|p| {
                let p = p.replace("const ", "").replace("__restrict__", "");
                let pointer = p.contains('*');
                let p = p.replace('*', " ");
                let (ty, _name) = p.trim().rsplit_once(' ').expect("a typed parameter");
                let ty = ty.trim();
                if pointer {
                    format!("{ty}*")
                } else {
                    ty.to_string()
                }
            })
            .collect();
        found.push(Kernel {
            name: rest[..open].trim().to_string(),
            params,
        });
        rest = &rest[close..];
    }
    found
}

/// The structs of `src` (`struct Name { type a, b; type c; };`): name and (type, field) list.
fn structs(src: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find("\nstruct ") {
        rest = &rest[at + "\nstruct ".len()..];
        let (Some(open), Some(close)) = (rest.find('{'), rest.find("};")) else {
            break;
        };
        let name = rest[..open].trim().to_string();
        let mut fields = Vec::new();
        for decl in rest[open + 1..close]
            .split(';')
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            let (ty, names) = decl.split_once(' ').expect("type names");
            for n in names.split(',') {
                fields.push((ty.to_string(), n.trim().to_string()));
            }
        }
        found.push((name, fields));
        rest = &rest[close..];
    }
    found
}

/// C++ that parses one token into a value of scalar type `ty` from `p` (advancing `p`).
fn parse_scalar(ty: &str) -> &'static str {
    match ty {
        "int" => "(int)strtol(p, &p, 10)",
        "long" => "strtol(p, &p, 10)",
        "float" => "strtof(p, &p)",
        "double" => "strtod(p, &p)",
        other => panic!("no parser for parameters of type {other}"),
    }
}

/// The program's `main` and helpers for the kernels of `src`.
fn driver(src: &str) -> String {
    let mut d = String::from(
        "#include <map>\n#include <string>\n#include <string.h>\n\
         static std::map<std::string, void*> buffers;\n\
         static void* buffer(const char* name) {\n\
           auto it = buffers.find(name);\n\
           if (it == buffers.end()) { fprintf(stderr, \"no buffer %s\\n\", name); exit(3); }\n\
           return it->second;\n}\n",
    );
    for (name, fields) in structs(src) {
        let _ = writeln!(d, "static {name} parse_{name}(char* p) {{\n  {name} v;");
        for (ty, f) in fields {
            let _ = writeln!(d, "  v.{f} = {}; if (*p == ',') p++;", parse_scalar(&ty));
        }
        d.push_str("  return v;\n}\n");
    }
    d.push_str(
        "static void call(const std::string& name, dim3 g, dim3 b, size_t bytes, std::vector<char*>& a) {\n",
    );
    for k in kernels(src) {
        let _ = writeln!(
            d,
            "  if (name == \"{}\") {{\n    if (a.size() != {}) {{ fprintf(stderr, \"{}: {} arguments\\n\"); exit(3); }}",
            k.name,
            k.params.len(),
            k.name,
            k.params.len()
        );
        let mut args = Vec::new();
        for (i, ty) in k.params.iter().enumerate() {
            let value = if let Some(elem) = ty.strip_suffix('*') {
                format!("({elem}*)buffer(a[{i}])")
            } else if ["int", "long", "float", "double"].contains(&ty.as_str()) {
                format!("[&] {{ char* p = a[{i}]; return {}; }}()", parse_scalar(ty))
            } else {
                format!("parse_{ty}(a[{i}])")
            };
            let _ = writeln!(d, "    auto a{i} = {value};");
            args.push(format!("a{i}"));
        }
        let _ = writeln!(
            d,
            "    cuda_on_cpu_launch(g, b, bytes, [&] {{ {}({}); }});\n    return;\n  }}",
            k.name,
            args.join(", ")
        );
    }
    d.push_str("  fprintf(stderr, \"no kernel %s\\n\", name.c_str()); exit(3);\n}\n");
    d.push_str(
        r#"
// argv[1]: a folder with buffers.txt (name, element size, count per line; the values in
// NAME.in), launches.txt (kernel gx gy gz bx by bz bytes args... per line); writes NAME.out.
int main(int argc, char** argv) {
    if (argc != 2) return 2;
    std::string dir = argv[1];
    std::vector<std::pair<std::string, size_t>> names;
    FILE* list = fopen((dir + "/buffers.txt").c_str(), "r");
    char name[256];
    size_t size, count;
    while (list && fscanf(list, "%255s %zu %zu", name, &size, &count) == 3) {
        double* mem = new double[(size * count + 7) / 8 + 1];
        FILE* f = fopen((dir + "/" + name + ".in").c_str(), "rb");
        if (!f || fread(mem, size, count, f) != count) { fprintf(stderr, "cannot read %s\n", name); return 3; }
        fclose(f);
        buffers[name] = mem;
        names.push_back({name, size * count});
    }
    FILE* launches = fopen((dir + "/launches.txt").c_str(), "r");
    char line[4096];
    while (launches && fgets(line, sizeof line, launches)) {
        std::vector<char*> tok;
        for (char* t = strtok(line, " \n"); t; t = strtok(nullptr, " \n")) tok.push_back(t);
        if (tok.size() < 8) continue;
        unsigned v[7];
        for (int i = 0; i < 7; i++) v[i] = (unsigned)strtoul(tok[i + 1], nullptr, 10);
        std::vector<char*> args(tok.begin() + 8, tok.end());
        call(tok[0], dim3(v[0], v[1], v[2]), dim3(v[3], v[4], v[5]), v[6], args);
    }
    for (auto& [n, bytes] : names) {
        FILE* f = fopen((dir + "/" + n + ".out").c_str(), "wb");
        if (!f || fwrite(buffers[n], 1, bytes, f) != bytes) { fprintf(stderr, "cannot write %s\n", n.c_str()); return 3; }
        fclose(f);
    }
    return 0;
}
"#,
    );
    d
}

fn header_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cuda_on_cpu")
}

fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".into())
}

/// No contraction into fused multiply-adds, as the CPU layers compute.
const FLAGS: [&str; 5] = ["-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-w"];

/// What `compiler() --version` says, for the executables' hash.
fn compiler_version() -> String {
    Command::new(compiler())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Compiles `program` (after the header) into an executable in `dir`.
fn compile(dir: &Path, program: &str) -> Result<PathBuf, String> {
    let cpp = dir.join("kernels.cpp");
    let exe = dir.join("kernels");
    std::fs::write(&cpp, format!("#include \"cuda_on_cpu.h\"\n{program}"))
        .map_err(|e| e.to_string())?;
    let out = Command::new(compiler())
        .args(FLAGS)
        .arg("-I")
        .arg(header_dir())
        .arg(&cpp)
        .arg("-o")
        .arg(&exe)
        .output()
        .map_err(|e| format!("{}: {e}", compiler()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(exe)
}

/// Why these tests cannot run here, if they cannot: no compiler that builds and runs the
/// header's launches.
fn unavailable() -> Option<&'static str> {
    static PROBE: OnceLock<Option<String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let probe = || -> Result<(), String> {
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let program = "void probe(int* v) { v[threadIdx.x] = 1; __syncthreads(); }\n\
                     int main() { int v[2] = {0, 0}; cuda_on_cpu_launch(dim3(1), dim3(2), 0, [&] { probe(v); });\n\
                     return v[0] + v[1] == 2 ? 0 : 1; }\n";
                let exe = compile(dir.path(), program)?;
                let ran = Command::new(exe).status().map_err(|e| e.to_string())?;
                ran.success().then_some(()).ok_or_else(|| "the probe ran wrong".into())
            };
            probe().err().map(|e| {
                let first = e.lines().next().unwrap_or("").to_string();
                format!("no C++20 compiler for the CUDA-on-CPU tests ({}): {first}", compiler())
            })
        })
        .as_deref()
}

/// Prints why the calling test is skipped and returns true, when it must be.
pub fn skip() -> bool {
    match unavailable() {
        Some(why) => {
            println!("SKIPPED: {why}");
            true
        }
        None => false,
    }
}

/// The executable for a set of source files, built into the target folder
/// (`CARGO_TARGET_TMPDIR`) under a hash of everything that goes into it: later runs reuse it
/// until a kernel, the header, the driver or the compiler changes.
fn executable(files: &[&str]) -> PathBuf {
    type Built = Arc<OnceLock<PathBuf>>;
    static BUILT: Mutex<Vec<(String, Built)>> = Mutex::new(Vec::new());
    let key = files.join("+");
    let cell = {
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        match built.iter().find(|(k, _)| *k == key) {
            Some((_, c)) => c.clone(),
            None => {
                let c = Built::default();
                built.push((key, c.clone()));
                c
            }
        }
    };
    cell.get_or_init(|| {
        let src: String = files
            .iter()
            .map(|f| for_the_host(&kernel_source(f)))
            .collect();
        let program = format!("{src}\n{}", driver(&src));
        let header = std::fs::read_to_string(header_dir().join("cuda_on_cpu.h")).expect("header");
        let mut hash = DefaultHasher::new();
        (&program, &header, compiler_version(), FLAGS).hash(&mut hash);
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cuda_on_cpu");
        let exe = root.join(format!("kernels-{:016x}", hash.finish()));
        if exe.is_file() {
            return exe;
        }
        std::fs::create_dir_all(&root).expect("a folder for the executables");
        let dir = tempfile::tempdir_in(&root).expect("a temporary folder");
        let built = compile(dir.path(), &program).unwrap_or_else(|e| {
            panic!("the kernels of {files:?} do not compile on the host:\n{e}")
        });
        // Another test process may have built the same one meanwhile: either will do.
        std::fs::rename(&built, &exe).expect("the executable moved into place");
        exe
    })
    .clone()
}

/// Values a buffer can hold.
pub trait Element: Copy {
    fn bytes(v: &[Self]) -> Vec<u8>;
    fn from_bytes(b: &[u8]) -> Vec<Self>;
}

macro_rules! element {
    ($t:ty) => {
        impl Element for $t {
            fn bytes(v: &[Self]) -> Vec<u8> {
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            fn from_bytes(b: &[u8]) -> Vec<Self> {
                b.chunks_exact(std::mem::size_of::<$t>())
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            }
        }
    };
}
element!(f32);
element!(f64);
element!(i32);

/// Buffers and launches of kernels of some source files.
pub struct Program {
    files: Vec<&'static str>,
    /// Name, element size, contents.
    buffers: Vec<(String, usize, Vec<u8>)>,
    launches: String,
}

impl Program {
    /// A program of the kernels of these files of `src/layers/cuda/`.
    pub fn new(files: &[&'static str]) -> Self {
        Program {
            files: files.to_vec(),
            buffers: Vec::new(),
            launches: String::new(),
        }
    }

    /// A buffer `name` (a pointer argument of the launches) holding `values`.
    pub fn buffer<T: Element>(&mut self, name: &str, values: &[T]) -> &mut Self {
        let size = std::mem::size_of::<T>();
        self.buffers
            .push((name.to_string(), size, T::bytes(values)));
        self
    }

    /// `kernel<<<grid, block, bytes>>>(args)`; `args` separated by spaces: buffer names,
    /// numbers, and structs as their fields' values separated by commas.
    pub fn launch(
        &mut self,
        kernel: &str,
        grid: [usize; 3],
        block: [usize; 3],
        bytes: usize,
        args: &str,
    ) -> &mut Self {
        let [gx, gy, gz] = grid;
        let [bx, by, bz] = block;
        let _ = writeln!(
            self.launches,
            "{kernel} {gx} {gy} {gz} {bx} {by} {bz} {bytes} {args}"
        );
        self
    }

    /// Runs the launches in order and returns every buffer's values afterwards.
    pub fn run(&self) -> Buffers {
        let exe = executable(&self.files);
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut list = String::new();
        for (name, size, bytes) in &self.buffers {
            std::fs::write(dir.path().join(format!("{name}.in")), bytes).expect("a buffer");
            let _ = writeln!(list, "{name} {size} {}", bytes.len() / size);
        }
        std::fs::write(dir.path().join("buffers.txt"), list).expect("the buffer list");
        std::fs::write(dir.path().join("launches.txt"), &self.launches).expect("the launches");
        let out = Command::new(&exe)
            .arg(dir.path())
            .output()
            .expect("run the kernels");
        assert!(
            out.status.success(),
            "the kernels failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let values = self
            .buffers
            .iter()
            .map(|(name, ..)| {
                let bytes =
                    std::fs::read(dir.path().join(format!("{name}.out"))).expect("a result");
                (name.clone(), bytes)
            })
            .collect();
        Buffers(values)
    }
}

/// The buffers after a run.
pub struct Buffers(HashMap<String, Vec<u8>>);

impl Buffers {
    /// The values of buffer `name` after the launches.
    pub fn get<T: Element>(&self, name: &str) -> Vec<T> {
        T::from_bytes(&self.0[name])
    }
}

/// The largest |a - b| / max(1, |b|) over the pairs.
pub fn max_rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

#[test]
fn kernel_signatures_and_structs_are_read_from_the_source() {
    let src = "// a struct in a comment\nstruct Geo { int n, c; float s; };\n\
               extern \"C\" __global__ void k(float* y, const float* x, Geo g, long total) {}\n\
               __device__ float helper(float v) { return v; }\n\
               extern \"C\" __global__ void m(double* out, int n) {}\n";
    let ks = kernels(src);
    let sig: Vec<(&str, Vec<&str>)> = ks
        .iter()
        .map(|k| {
            (
                k.name.as_str(),
                k.params.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        sig,
        [
            ("k", vec!["float*", "float*", "Geo", "long"]),
            ("m", vec!["double*", "int"])
        ]
    );
    let st = structs(src);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].0, "Geo");
    let fields: Vec<String> = st[0].1.iter().map(|(t, f)| format!("{t} {f}")).collect();
    assert_eq!(fields, ["int n", "int c", "float s"]);
    assert_eq!(
        for_the_host("  extern __shared__ float sw[];\nx;"),
        "  float* sw = (float*)cuda_on_cpu_dynamic_shared;\nx;\n"
    );
}
