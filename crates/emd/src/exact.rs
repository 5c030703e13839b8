//! Exact discrete optimal transport (`emd`, `emd2`) by the network simplex method on the
//! bipartite transportation graph.
//!
//! The basis is a spanning tree of the n + m nodes (n + m - 1 arcs, degenerate zero-flow arcs
//! included), stored as parent pointers plus a preorder thread in which every subtree is one
//! contiguous run (LEMON's representation). It starts from the least-cost rule (cells
//! filled in increasing cost, bucket-sorted in O(n m)), which halves the pivots of a north-west
//! corner start on random instances. Each pivot picks an entering arc of negative reduced cost by
//! block search (blocks of about sqrt(n m) arcs, as in LEMON, which POT wraps), pushes flow round
//! the cycle it closes, drops the blocking arc (ties go to the last one met from the cycle's apex,
//! LEMON's rule against stalling), re-hangs the cut subtree by splicing thread runs, and shifts
//! its potentials in one linear pass along its run.
//!
//! Complexity: a pivot costs O(sqrt(n m) + n + m). The number of pivots of the plain network
//! simplex has no polynomial bound in theory; measured on `bench/emd_vs_python.py`'s random
//! instances: about 1,100 pivots for n = m = 200 and 3,900 for n = m = 500. Memory is O(n m) for the plan and
//! the start's cell order.

use crate::validate::{MassPolicy, Support};
use crate::EmdError;

const NONE: usize = usize::MAX;

/// Settings of the exact solver.
///
/// ```
/// use mouton_emd::{emd2, EmdOptions, MassPolicy};
/// // Compare shapes only: b is rescaled to a's total.
/// let opts = EmdOptions { mass: MassPolicy::Normalize, ..Default::default() };
/// assert_eq!(emd2(&[1.0, 0.0], &[0.0, 4.0], &[0.0, 3.0, 3.0, 0.0], &opts)?, 3.0);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmdOptions {
    /// Pivot cap; [`EmdError::NotConverged`] past it. The default is never reached in practice.
    pub max_iter: usize,
    /// What to do when `a` and `b` have different totals.
    pub mass: MassPolicy,
}

impl Default for EmdOptions {
    fn default() -> Self {
        EmdOptions {
            max_iter: 100_000_000,
            mass: MassPolicy::Strict,
        }
    }
}

/// An optimal transport plan and its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct OtPlan {
    /// Optimal cost sum_ij plan_ij cost_ij.
    pub cost: f64,
    /// The plan, `rows x cols`, row-major: `plan[i * cols + j]` is the mass moved from i to j.
    pub plan: Vec<f64>,
    /// Rows (length of `a`).
    pub rows: usize,
    /// Columns (length of `b`).
    pub cols: usize,
    /// Dual potentials of `a` (alpha) and `b` (beta): alpha_i + beta_j <= cost_ij, with equality
    /// wherever mass moves. Entries of zero-mass bins are 0.
    pub alpha: Vec<f64>,
    /// See `alpha`.
    pub beta: Vec<f64>,
    /// Simplex pivots performed.
    pub iterations: usize,
}

/// Optimal transport plan between histograms `a` (n) and `b` (m) for a row-major `n x m` cost
/// matrix: POT's `ot.emd`.
///
/// ```
/// use mouton_emd::{emd, EmdOptions};
/// // Move [0.5, 0.5] at x = 0, 1 onto [0.5, 0.5] at x = 1, 2 with cost |x - y|.
/// let cost = [1.0, 2.0, 0.0, 1.0];
/// let ot = emd(&[0.5, 0.5], &[0.5, 0.5], &cost, &EmdOptions::default())?;
/// assert_eq!(ot.cost, 1.0);
/// // Optimal plans here are not unique; every one has cost 1 and the right marginals.
/// assert_eq!(ot.plan[0] + ot.plan[1], 0.5);
/// assert_eq!(ot.plan[0] + ot.plan[2], 0.5);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
pub fn emd(a: &[f64], b: &[f64], cost: &[f64], opts: &EmdOptions) -> Result<OtPlan, EmdError> {
    let (n, m) = (a.len(), b.len());
    let sup = Support::new(a, b, cost, opts.mass)?;
    let (rows, cols, c) = (&sup.rows, &sup.cols, &sup.cost[..]);
    let mut s = Simplex::new(&sup.a, &sup.b, c);
    let iterations = s.solve(opts.max_iter)?;

    let (nn, mm) = (rows.len(), cols.len());
    let mut plan = vec![0.0; n * m];
    let mut total = 0.0;
    for node in 0..nn + mm {
        let par = s.parent[node];
        if par == NONE {
            continue;
        }
        let (i, j) = if node < nn {
            (node, par - nn)
        } else {
            (par, node - nn)
        };
        let f = s.flow[node];
        plan[rows[i] * m + cols[j]] = f;
        total += f * c[i * mm + j];
    }
    let mut alpha = vec![0.0; n];
    let mut beta = vec![0.0; m];
    for (k, &i) in rows.iter().enumerate() {
        alpha[i] = s.pi[k];
    }
    for (k, &j) in cols.iter().enumerate() {
        beta[j] = s.pi[nn + k];
    }
    Ok(OtPlan {
        cost: total,
        plan,
        rows: n,
        cols: m,
        alpha,
        beta,
        iterations,
    })
}

/// Optimal transport cost only: POT's `ot.emd2`. See [`emd`].
///
/// ```
/// use mouton_emd::{emd2, EmdOptions};
/// let w = emd2(&[1.0], &[0.25, 0.75], &[2.0, 4.0], &EmdOptions::default())?;
/// assert_eq!(w, 3.5);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
pub fn emd2(a: &[f64], b: &[f64], cost: &[f64], opts: &EmdOptions) -> Result<f64, EmdError> {
    emd(a, b, cost, opts).map(|p| p.cost)
}

/// Network simplex state. Nodes 0..n are sources (rows), n..n+m sinks (columns); node 0 is the
/// root. Every non-root node's tree arc joins it to its parent and carries `flow[node]`.
struct Simplex<'c> {
    n: usize,
    m: usize,
    c: &'c [f64],
    parent: Vec<usize>,
    /// Last pivot in which the apex search reached a node, and from which end (see `pivot`).
    stamp: Vec<u64>,
    flow: Vec<f64>,
    /// Potentials: reduced cost of arc (i, j) is c_ij - pi[i] - pi[n + j].
    pi: Vec<f64>,
    /// The tree in preorder as a circular doubly linked list through the root: every subtree is
    /// one contiguous run, from its root to `last[root]`.
    thread: Vec<usize>,
    rthread: Vec<usize>,
    last: Vec<usize>,
    // scratch
    up_i: Vec<usize>,
    up_j: Vec<usize>,
    path: Vec<usize>,
    pieces: Vec<(usize, usize)>,
    pivots: u64,
}

impl<'c> Simplex<'c> {
    /// Least-cost start: fill cells in (bucketed) increasing cost, as much as each takes. Every
    /// fill exhausts a row or a column, so the filled cells form a forest; zero-flow arcs join its
    /// trees into a spanning tree. Far closer to optimal than the north-west corner, for O(n m).
    fn new(a: &[f64], b: &[f64], c: &'c [f64]) -> Self {
        let (n, m) = (a.len(), b.len());
        if n * m > u32::MAX as usize {
            return Self::north_west(a, b, c);
        }
        let (lo, hi) = c
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let buckets = (n * m).clamp(1, 1 << 16);
        let scale = (buckets - 1) as f64 / (hi - lo);
        // A zero, subnormal or overflowing range degrades to one bucket, never an out-of-range one.
        let scale = if scale.is_finite() { scale } else { 0.0 };
        let bucket = |x: f64| (((x - lo) * scale) as usize).min(buckets - 1);
        let mut start = vec![0u32; buckets + 1];
        for &x in c {
            start[bucket(x) + 1] += 1;
        }
        for k in 0..buckets {
            start[k + 1] += start[k];
        }
        let mut cells = vec![0u32; n * m];
        for (k, &x) in c.iter().enumerate() {
            let b = &mut start[bucket(x)];
            cells[*b as usize] = k as u32;
            *b += 1;
        }
        let (mut ra, mut rb) = (a.to_vec(), b.to_vec());
        let (mut row_done, mut col_done) = (vec![false; n], vec![false; m]);
        let mut arcs: Vec<(usize, usize, f64)> = Vec::with_capacity(n + m);
        let (mut rows_left, mut cols_left) = (n, m);
        let m32 = m as u32;
        for &k in &cells {
            let (i, j) = ((k / m32) as usize, (k % m32) as usize);
            if row_done[i] || col_done[j] {
                continue;
            }
            let f = ra[i].min(rb[j]);
            ra[i] -= f;
            rb[j] -= f;
            arcs.push((i, n + j, f));
            if ra[i] <= 0.0 {
                row_done[i] = true;
                rows_left -= 1;
            }
            if rb[j] <= 0.0 {
                col_done[j] = true;
                cols_left -= 1;
            }
            // Once either side is used up nothing more can move (up to rounding dust).
            if rows_left == 0 || cols_left == 0 {
                break;
            }
        }
        Self::from_forest(n, m, c, arcs)
    }

    /// Completes a forest of (source, sink, flow) arcs with zero-flow arcs and hangs it from node 0.
    fn from_forest(n: usize, m: usize, c: &'c [f64], mut arcs: Vec<(usize, usize, f64)>) -> Self {
        let nodes = n + m;
        let mut uf: Vec<usize> = (0..nodes).collect();
        fn find(uf: &mut [usize], mut x: usize) -> usize {
            while uf[x] != x {
                uf[x] = uf[uf[x]];
                x = uf[x];
            }
            x
        }
        for &(s, d, _) in &arcs {
            let (rs, rd) = (find(&mut uf, s), find(&mut uf, d));
            uf[rs] = rd;
        }
        // Join every other tree to node 0's: through sink `d` of its own if it has one (arc 0-d),
        // else its lone source to sink n (arc s-n), joining n to 0's tree first if needed.
        let (r0, rn) = (find(&mut uf, 0), find(&mut uf, n));
        if r0 != rn {
            arcs.push((0, n, 0.0));
            uf[rn] = r0;
        }
        for d in n..nodes {
            let (r0, rd) = (find(&mut uf, 0), find(&mut uf, d));
            if rd != r0 {
                arcs.push((0, d, 0.0));
                uf[rd] = r0;
            }
        }
        for src in 0..n {
            let (r0, rs) = (find(&mut uf, 0), find(&mut uf, src));
            if rs != r0 {
                arcs.push((src, n, 0.0));
                uf[rs] = r0;
            }
        }
        debug_assert_eq!(arcs.len(), nodes - 1);
        // Adjacency in CSR form, then a breadth-first walk from the root.
        let mut deg = vec![0usize; nodes + 1];
        for &(s, d, _) in &arcs {
            deg[s + 1] += 1;
            deg[d + 1] += 1;
        }
        for k in 0..nodes {
            deg[k + 1] += deg[k];
        }
        let mut fill = deg.clone();
        let mut adj = vec![(0usize, 0.0f64); 2 * arcs.len()];
        for &(s, d, f) in &arcs {
            adj[fill[s]] = (d, f);
            fill[s] += 1;
            adj[fill[d]] = (s, f);
            fill[d] += 1;
        }
        let mut s = Self::empty(n, m, c);
        let mut seen = vec![false; nodes];
        let mut queue = std::collections::VecDeque::from([0usize]);
        seen[0] = true;
        while let Some(u) = queue.pop_front() {
            for &(w, f) in &adj[deg[u]..deg[u + 1]] {
                if !seen[w] {
                    seen[w] = true;
                    s.attach(w, u, f);
                    queue.push_back(w);
                }
            }
        }
        s.build_thread();
        s
    }

    fn empty(n: usize, m: usize, c: &'c [f64]) -> Self {
        let nodes = n + m;
        Simplex {
            n,
            m,
            c,
            parent: vec![NONE; nodes],
            stamp: vec![0; nodes],
            flow: vec![0.0; nodes],
            pi: vec![0.0; nodes],
            thread: vec![NONE; nodes],
            rthread: vec![NONE; nodes],
            last: vec![NONE; nodes],
            up_i: Vec::new(),
            up_j: Vec::new(),
            path: Vec::new(),
            pieces: Vec::new(),
            pivots: 0,
        }
    }

    /// North-west corner start: a staircase, always a spanning tree.
    fn north_west(a: &[f64], b: &[f64], c: &'c [f64]) -> Self {
        let (n, m) = (a.len(), b.len());
        let mut s = Self::empty(n, m, c);
        let (mut i, mut j) = (0, 0);
        let (mut ra, mut rb) = (a[0], b[0]);
        // The first cell hangs sink 0 under the root.
        s.attach(n, 0, ra.min(rb));
        loop {
            let f = ra.min(rb);
            ra -= f;
            rb -= f;
            if i == n - 1 && j == m - 1 {
                break;
            }
            let go_right = i == n - 1 || (j < m - 1 && rb <= ra);
            if go_right {
                j += 1;
                rb = b[j];
                let f = ra.min(rb).max(0.0);
                s.attach(n + j, i, f);
            } else {
                i += 1;
                ra = a[i];
                let f = ra.min(rb).max(0.0);
                s.attach(i, n + j, f);
            }
        }
        s.build_thread();
        s
    }

    /// Hangs a new node under `parent` during construction, setting its potential.
    fn attach(&mut self, node: usize, parent: usize, f: f64) {
        self.parent[node] = parent;
        self.flow[node] = f;
        self.pi[node] = self.arc_cost(node, parent) - self.pi[parent];
    }

    /// Preorder thread and subtree ends of the finished start tree (root: node 0).
    fn build_thread(&mut self) {
        let nodes = self.n + self.m;
        let mut start = vec![0usize; nodes + 1];
        for v in 0..nodes {
            if self.parent[v] != NONE {
                start[self.parent[v] + 1] += 1;
            }
        }
        for k in 0..nodes {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut children = vec![0usize; nodes.saturating_sub(1)];
        for v in 0..nodes {
            let p = self.parent[v];
            if p != NONE {
                children[fill[p]] = v;
                fill[p] += 1;
            }
        }
        let mut order = Vec::with_capacity(nodes);
        let mut stack = vec![0usize];
        while let Some(v) = stack.pop() {
            order.push(v);
            stack.extend_from_slice(&children[start[v]..start[v + 1]]);
        }
        debug_assert_eq!(order.len(), nodes);
        for k in 0..nodes {
            let (v, w) = (order[k], order[(k + 1) % nodes]);
            self.thread[v] = w;
            self.rthread[w] = v;
        }
        // Children end before their parent's subtree does: fill `last` from the back.
        for &v in &order {
            self.last[v] = v;
        }
        for &v in order.iter().rev() {
            let p = self.parent[v];
            if p != NONE && self.last[p] == p {
                self.last[p] = self.last[v];
            }
        }
    }

    #[inline]
    fn arc_cost(&self, x: usize, y: usize) -> f64 {
        let (i, j) = if x < self.n {
            (x, y - self.n)
        } else {
            (y, x - self.n)
        };
        self.c[i * self.m + j]
    }

    fn solve(&mut self, max_iter: usize) -> Result<usize, EmdError> {
        let (n, m) = (self.n, self.m);
        let arcs = n * m;
        let cmax = self.c.iter().fold(0.0f64, |acc, x| acc.max(x.abs()));
        let tol = 1e-12 * cmax.max(f64::MIN_POSITIVE);
        let block = ((arcs as f64).sqrt() as usize).max(10).min(arcs);
        let (mut ci, mut cj) = (0usize, 0usize);
        let mut iterations = 0;
        loop {
            // Block search: the most negative reduced cost in the next block with one, wrapping
            // round; a full pass without one proves optimality.
            let mut best = -tol;
            let mut enter = None;
            let mut scanned = 0;
            let mut in_block = 0;
            while scanned < arcs {
                let row = &self.c[ci * m..(ci + 1) * m];
                let ui = self.pi[ci];
                let v = &self.pi[n..];
                // Scan the rest of this row, or up to the end of the block.
                let end = (cj + (block - in_block)).min(m);
                let (seg_c, seg_v) = (&row[cj..end], &v[cj..end]);
                // Vectorized minimum first; the scalar pass to find where runs only on improvement.
                if min_reduced_cost(seg_c, seg_v, ui) < best {
                    for (jj, (&cc, &vj)) in seg_c.iter().zip(seg_v).enumerate() {
                        let r = cc - ui - vj;
                        if r < best {
                            best = r;
                            enter = Some((ci, cj + jj));
                        }
                    }
                }
                let took = end - cj;
                scanned += took;
                in_block += took;
                cj = end;
                if cj == m {
                    cj = 0;
                    ci = if ci + 1 == n { 0 } else { ci + 1 };
                }
                if in_block >= block {
                    if enter.is_some() {
                        break;
                    }
                    in_block = 0;
                }
            }
            let Some((ei, ej)) = enter else {
                return Ok(iterations);
            };
            if iterations >= max_iter {
                return Err(EmdError::NotConverged {
                    solver: "network simplex",
                    iterations,
                    residual: -best,
                });
            }
            iterations += 1;
            self.pivot(ei, n + ej, best);
            debug_assert!(n + m > 64 || self.tree_is_consistent());
        }
    }

    /// Brings arc (source `i`, sink `jn`) with reduced cost `r` < 0 into the tree.
    #[inline(never)]
    fn pivot(&mut self, i: usize, jn: usize, r: f64) {
        let n = self.n;
        // Walk both ends up to the apex. The cycle runs i -> jn -> (up) apex -> (down) i, so a
        // tree arc loses flow when crossed sink-to-source: a sink child on jn's side, a source
        // child on i's side.
        self.up_i.clear();
        self.up_j.clear();
        // Climb from both ends in turn, stamping nodes 2k (from i) or 2k + 1 (from jn); the
        // first node already stamped by the other climb is the apex. No depths to maintain.
        self.pivots += 1;
        let (si, sj) = (2 * self.pivots, 2 * self.pivots + 1);
        let (mut x, mut y) = (i, jn);
        self.stamp[x] = si;
        self.stamp[y] = sj;
        let apex = loop {
            if self.parent[x] != NONE {
                self.up_i.push(x);
                x = self.parent[x];
                if self.stamp[x] == sj {
                    break x;
                }
                self.stamp[x] = si;
            }
            if self.parent[y] != NONE {
                self.up_j.push(y);
                y = self.parent[y];
                if self.stamp[y] == si {
                    break y;
                }
                self.stamp[y] = sj;
            }
        };
        // One climb may have passed the apex: cut it back there.
        if let Some(k) = self.up_i.iter().position(|&c| c == apex) {
            self.up_i.truncate(k);
        }
        if let Some(k) = self.up_j.iter().position(|&c| c == apex) {
            self.up_j.truncate(k);
        }
        // Blocking arc: the last minimum met from the apex in cycle order, i.e. the highest on
        // jn's side, else the deepest on i's side.
        let mut theta = f64::INFINITY;
        let mut leave = NONE;
        let mut leave_on_j = false;
        for &c in self.up_i.iter() {
            if c < n && self.flow[c] < theta {
                theta = self.flow[c];
                leave = c;
            }
        }
        for &c in self.up_j.iter() {
            if c >= n && self.flow[c] <= theta {
                theta = self.flow[c];
                leave = c;
                leave_on_j = true;
            }
        }
        let theta = theta.max(0.0);
        if theta > 0.0 {
            for &c in &self.up_i {
                if c < n {
                    self.flow[c] -= theta;
                } else {
                    self.flow[c] += theta;
                }
            }
            for &c in &self.up_j {
                if c >= n {
                    self.flow[c] -= theta;
                } else {
                    self.flow[c] += theta;
                }
            }
        }
        // Re-hang the subtree under `leave` from the entering arc's endpoint inside it.
        let (u_in, u_out) = if leave_on_j { (jn, i) } else { (i, jn) };
        let mut path = std::mem::take(&mut self.path);
        path.clear();
        let side = if leave_on_j { &self.up_j } else { &self.up_i };
        let k = side.iter().position(|&c| c == leave).map_or(0, |p| p + 1);
        path.extend_from_slice(&side[..k]);
        debug_assert_eq!(path.first().copied(), Some(u_in));
        self.rehang(&path, u_out);
        let mut new_parent = u_out;
        let mut carried = theta;
        for &w in &path {
            let old = self.flow[w];
            self.parent[w] = new_parent;
            self.flow[w] = carried;
            carried = old;
            new_parent = w;
        }
        self.path = path;
        // Shift the subtree's potentials so the entering arc has zero reduced cost: one pass
        // along its contiguous run of the thread.
        let (d_src, d_snk) = if u_in < n { (r, -r) } else { (-r, r) };
        let end = self.last[u_in];
        let mut w = u_in;
        loop {
            self.pi[w] += if w < n { d_src } else { d_snk };
            if w == end {
                break;
            }
            w = self.thread[w];
        }
    }

    /// Debug check: every thread run holds exactly its root's descendants, and tree arcs have
    /// zero reduced cost. Quadratic: only called from `debug_assert!` on small problems.
    fn tree_is_consistent(&self) -> bool {
        let nodes = self.n + self.m;
        let is_desc = |mut w: usize, v: usize| loop {
            if w == v {
                return true;
            }
            if self.parent[w] == NONE {
                return false;
            }
            w = self.parent[w];
        };
        for v in 0..nodes {
            let mut run = 0;
            let mut w = v;
            loop {
                if !is_desc(w, v) || run > nodes {
                    return false;
                }
                run += 1;
                if w == self.last[v] {
                    break;
                }
                w = self.thread[w];
            }
            if run != (0..nodes).filter(|&w| is_desc(w, v)).count() {
                return false;
            }
            if self.thread[self.rthread[v]] != v {
                return false;
            }
            let p = self.parent[v];
            if p != NONE {
                let r = self.arc_cost(v, p) - self.pi[v] - self.pi[p];
                if r.abs() > 1e-9 * (1.0 + self.pi[v].abs() + self.pi[p].abs()) {
                    return false;
                }
            }
        }
        true
    }

    /// Moves the subtree of `q = path[k]` (cut from its parent) to hang from `u_out` by the
    /// entering arc at `u_in = path[0]`, where `path[t + 1]` is the old parent of `path[t]`.
    /// Updates the thread and `last`; parents and flows are the caller's. O(path + the ancestors
    /// whose subtree ended inside the moved run).
    fn rehang(&mut self, path: &[usize], u_out: usize) {
        let q = path[path.len() - 1];
        let old_parent_q = self.parent[q];
        // Re-rooted at u_in, the run becomes S_0 S_1 .. S_k with S_0 = u_in's run and S_t =
        // path[t]'s old run without path[t - 1]'s: pieces [path[t] .. before path[t - 1]] and
        // [after path[t - 1]'s run .. path[t]'s end].
        self.pieces.clear();
        self.pieces.push((path[0], self.last[path[0]]));
        for t in 1..path.len() {
            let (wt, wp) = (path[t], path[t - 1]);
            self.pieces.push((wt, self.rthread[wp]));
            if self.last[wp] != self.last[wt] {
                self.pieces
                    .push((self.thread[self.last[wp]], self.last[wt]));
            }
        }
        // Cut q's old run out of the thread.
        let old_end = self.last[q];
        let before = self.rthread[q];
        let after = self.thread[old_end];
        self.thread[before] = after;
        self.rthread[after] = before;
        let mut x = old_parent_q;
        while x != NONE && self.last[x] == old_end {
            self.last[x] = before;
            x = self.parent[x];
        }
        // Chain the pieces and insert them right after u_out.
        for k in 1..self.pieces.len() {
            let (prev_end, next_start) = (self.pieces[k - 1].1, self.pieces[k].0);
            self.thread[prev_end] = next_start;
            self.rthread[next_start] = prev_end;
        }
        let (first, new_end) = (path[0], self.pieces[self.pieces.len() - 1].1);
        let nx = self.thread[u_out];
        self.thread[u_out] = first;
        self.rthread[first] = u_out;
        self.thread[new_end] = nx;
        self.rthread[nx] = new_end;
        for &w in path {
            self.last[w] = new_end;
        }
        // If u_out was a leaf, it and the ancestors whose run ended at it now end at new_end.
        if self.last[u_out] == u_out {
            let mut x = u_out;
            while x != NONE && self.last[x] == u_out {
                self.last[x] = new_end;
                x = self.parent[x];
            }
        }
    }
}

/// min_j (c_j - u - v_j), using AVX2 where the CPU has it (same result either way: a minimum
/// does not depend on the order it is taken in).
#[inline]
fn min_reduced_cost(c: &[f64], v: &[f64], u: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { min_reduced_cost_avx2(c, v, u) };
        }
    }
    min_reduced_cost_lanes(c, v, u)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_reduced_cost_avx2(c: &[f64], v: &[f64], u: f64) -> f64 {
    min_reduced_cost_lanes(c, v, u)
}

/// Eight running minima updated lane by lane, which the compiler turns into vector selects.
#[inline(always)]
fn min_reduced_cost_lanes(c: &[f64], v: &[f64], u: f64) -> f64 {
    let mut mins = [f64::INFINITY; 8];
    let (cc, vc) = (c.chunks_exact(8), v.chunks_exact(8));
    let mut tail = f64::INFINITY;
    for (&x, &y) in cc.remainder().iter().zip(vc.remainder()) {
        let r = x - u - y;
        tail = if r < tail { r } else { tail };
    }
    for (x, y) in cc.zip(vc) {
        for l in 0..8 {
            let r = x[l] - u - y[l];
            mins[l] = if r < mins[l] { r } else { mins[l] };
        }
    }
    mins.iter().fold(tail, |a, &b| if b < a { b } else { a })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force_2x2(a: [f64; 2], b: [f64; 2], c: [f64; 4]) -> f64 {
        // Plans [[t, a0 - t], [b0 - t, ...]]: cost is linear in t, so an end point is optimal.
        let lo = 0f64.max(a[0] - b[1]);
        let hi = a[0].min(b[0]);
        let f =
            |t: f64| t * c[0] + (a[0] - t) * c[1] + (b[0] - t) * c[2] + (a[1] - b[0] + t) * c[3];
        f(lo).min(f(hi))
    }

    #[test]
    fn two_by_two_matches_brute_force() {
        let cases = [
            ([0.3, 0.7], [0.6, 0.4], [1.0, 5.0, 2.0, 0.5]),
            ([0.5, 0.5], [0.5, 0.5], [0.0, 1.0, 1.0, 0.0]),
            ([0.9, 0.1], [0.2, 0.8], [3.0, 1.0, 0.0, 7.0]),
        ];
        for (a, b, c) in cases {
            let got = emd2(&a, &b, &c, &EmdOptions::default()).unwrap();
            let want = brute_force_2x2(a, b, c);
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn permutation_assignment() {
        // Uniform masses and a cost that favours the reversed permutation.
        let n = 6;
        let c: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                if i + j == n - 1 {
                    0.0
                } else {
                    1.0 + (i * j) as f64
                }
            })
            .collect();
        let a = vec![1.0; n];
        let ot = emd(&a, &a, &c, &EmdOptions::default()).unwrap();
        assert_eq!(ot.cost, 0.0);
        for i in 0..n {
            assert_eq!(ot.plan[i * n + (n - 1 - i)], 1.0);
        }
        // Dual feasibility and complementary slackness.
        for i in 0..n {
            for j in 0..n {
                let r = c[i * n + j] - ot.alpha[i] - ot.beta[j];
                assert!(r > -1e-9, "negative reduced cost {r}");
                if ot.plan[i * n + j] > 0.0 {
                    assert!(r.abs() < 1e-9);
                }
            }
        }
    }

    #[test]
    fn pivot_cap_reports_non_convergence() {
        let capped = EmdOptions {
            max_iter: 0,
            ..Default::default()
        };
        // The greedy start fills the free cell (0, 0) and is left with (1, 1) at cost 100; the
        // optimum uses the off-diagonal, so one pivot is needed.
        let trap = [0.0, 1.0, 1.0, 100.0];
        let err = emd(&[0.5, 0.5], &[0.5, 0.5], &trap, &capped).unwrap_err();
        assert!(
            matches!(err, EmdError::NotConverged { iterations: 0, .. }),
            "{err}"
        );
        assert_eq!(
            emd2(&[0.5, 0.5], &[0.5, 0.5], &trap, &EmdOptions::default()).unwrap(),
            1.0
        );
        // Where the start is already optimal no pivot is needed.
        assert!(emd(&[0.5, 0.5], &[0.5, 0.5], &[0.0, 1.0, 1.0, 0.0], &capped).is_ok());
    }

    #[test]
    fn both_starts_reach_the_same_optimum() {
        // A small deterministic generator: no dependency needed for a test this size.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for (n, m) in [(1, 5), (5, 1), (7, 9), (30, 20), (40, 40)] {
            let a: Vec<f64> = (0..n).map(|_| next() + 0.01).collect();
            let b: Vec<f64> = (0..m).map(|_| next() + 0.01).collect();
            let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
            let a: Vec<f64> = a.iter().map(|x| x / sa).collect();
            let b: Vec<f64> = b.iter().map(|x| x / sb).collect();
            // Integer costs: many ties, so many degenerate pivots.
            let c: Vec<f64> = (0..n * m).map(|_| (next() * 8.0).floor()).collect();
            let opts = EmdOptions {
                mass: MassPolicy::Normalize,
                ..Default::default()
            };
            let greedy = emd2(&a, &b, &c, &opts).unwrap();
            let (an, bn): (Vec<f64>, Vec<f64>) = (
                a.iter().map(|x| x / a.iter().sum::<f64>()).collect(),
                b.iter().map(|x| x / b.iter().sum::<f64>()).collect(),
            );
            let mut nw = Simplex::north_west(&an, &bn, &c);
            nw.solve(usize::MAX).unwrap();
            let nw_cost: f64 = (0..n + m)
                .filter(|&v| nw.parent[v] != NONE)
                .map(|v| nw.flow[v] * nw.arc_cost(v, nw.parent[v]))
                .sum();
            assert!(
                (greedy - nw_cost).abs() < 1e-12,
                "{n}x{m}: {greedy} vs {nw_cost}"
            );
        }
    }

    #[test]
    fn subnormal_cost_range_does_not_overflow_the_start() {
        // Found by the extreme-input proptest: 1 / (hi - lo) overflowed to infinity.
        let w = emd2(&[1.0], &[0.5, 0.5], &[0.0, 2e-310], &EmdOptions::default()).unwrap();
        assert_eq!(w, 1e-310);
    }

    #[test]
    fn zero_mass_bins_and_errors() {
        let c = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let ot = emd(&[0.0, 1.0], &[0.5, 0.0, 0.5], &c, &EmdOptions::default()).unwrap();
        assert_eq!(ot.plan, vec![0.0, 0.0, 0.0, 0.5, 0.0, 0.5]);
        assert_eq!(ot.cost, 5.0);
        assert!(matches!(
            emd(&[1.0], &[1.0], &c, &EmdOptions::default()),
            Err(EmdError::CostShape {
                rows: 1,
                cols: 1,
                len: 6
            })
        ));
        assert!(matches!(
            emd(&[1.0], &[2.0], &[0.0], &EmdOptions::default()),
            Err(EmdError::UnequalMass { .. })
        ));
        let norm = EmdOptions {
            mass: MassPolicy::Normalize,
            ..Default::default()
        };
        assert_eq!(emd2(&[1.0], &[2.0], &[3.0], &norm).unwrap(), 3.0);
        assert!(matches!(
            emd(&[1.0], &[1.0], &[f64::NAN], &EmdOptions::default()),
            Err(EmdError::NonFinite { name: "cost", .. })
        ));
    }
}
