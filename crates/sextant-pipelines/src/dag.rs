//! The step graph: which steps each step waits for, and a run order.
//!
//! Hand-rolled Kahn's algorithm rather than petgraph: pipelines have at most
//! a few thousand steps, and ties are broken by file order so the order is
//! stable and readable.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Dependencies between steps `0..len`, known to be acyclic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dag {
    deps: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl Dag {
    /// Builds the graph of `len` nodes where each `(before, after)` edge
    /// makes `after` wait for `before`; on a cycle, returns every cycle found
    /// (one per tangle), each as the list of nodes where each waits for the
    /// next and the last waits for the first.
    pub fn new(len: usize, edges: &[(usize, usize)]) -> Result<Dag, Vec<Vec<usize>>> {
        let mut deps = vec![Vec::new(); len];
        let mut dependents = vec![Vec::new(); len];
        for &(before, after) in edges {
            deps[after].push(before);
            dependents[before].push(after);
        }
        for list in deps.iter_mut().chain(dependents.iter_mut()) {
            list.sort_unstable();
            list.dedup();
        }
        let order = kahn(&deps, &dependents, &vec![false; len]);
        if order.len() == len {
            return Ok(Dag {
                deps,
                dependents,
                order,
            });
        }
        Err(cycles(&deps, &dependents, &order))
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// A topological order; ties go to the step written first.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The steps `node` waits for.
    pub fn dependencies(&self, node: usize) -> &[usize] {
        &self.deps[node]
    }

    /// The steps waiting for `node`.
    pub fn dependents(&self, node: usize) -> &[usize] {
        &self.dependents[node]
    }
}

/// Kahn's algorithm over the nodes not already `done`; returns them in order.
fn kahn(deps: &[Vec<usize>], dependents: &[Vec<usize>], done: &[bool]) -> Vec<usize> {
    let mut waiting: Vec<usize> = deps
        .iter()
        .map(|d| d.iter().filter(|&&n| !done[n]).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..deps.len())
        .filter(|&n| !done[n] && waiting[n] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::new();
    while let Some(Reverse(n)) = ready.pop() {
        order.push(n);
        for &m in &dependents[n] {
            if !done[m] {
                waiting[m] -= 1;
                if waiting[m] == 0 {
                    ready.push(Reverse(m));
                }
            }
        }
    }
    order
}

/// Finds cycles among the nodes Kahn could not order: walk dependencies from
/// the first stuck node until a node repeats, report that loop, treat its
/// nodes as done, and repeat on whatever is still stuck.
fn cycles(deps: &[Vec<usize>], dependents: &[Vec<usize>], ordered: &[usize]) -> Vec<Vec<usize>> {
    let mut done = vec![false; deps.len()];
    for &n in ordered {
        done[n] = true;
    }
    let mut found = Vec::new();
    loop {
        let Some(start) = (0..deps.len()).find(|&n| !done[n]) else {
            return found;
        };
        let mut path = vec![start];
        let cycle = loop {
            let last = *path.last().expect("path starts non-empty");
            // Every stuck node waits for another stuck node, or Kahn would
            // have ordered it.
            let Some(&next) = deps[last].iter().find(|&&d| !done[d]) else {
                break None;
            };
            if let Some(at) = path.iter().position(|&p| p == next) {
                break Some(path.split_off(at));
            }
            path.push(next);
        };
        let Some(mut cycle) = cycle else {
            done[start] = true;
            continue;
        };
        // Start the report at the node written first.
        let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
        cycle.rotate_left(first);
        for &n in &cycle {
            done[n] = true;
        }
        for n in kahn(deps, dependents, &done) {
            done[n] = true;
        }
        found.push(cycle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_dependencies_then_file_order() {
        let dag = Dag::new(4, &[(2, 0), (3, 1)]).unwrap();
        assert_eq!(dag.order(), &[2, 0, 3, 1]);
        assert_eq!(dag.dependencies(0), &[2]);
        assert_eq!(dag.dependents(3), &[1]);
    }

    #[test]
    fn reports_each_cycle_once() {
        // 0 waits for 1, 1 for 2, 2 for 0; 3 waits for 4 and 4 for 3; 5 waits for 0.
        let edges = [(1, 0), (2, 1), (0, 2), (4, 3), (3, 4), (0, 5)];
        assert_eq!(Dag::new(6, &edges), Err(vec![vec![0, 1, 2], vec![3, 4]]));
        assert_eq!(Dag::new(1, &[(0, 0)]), Err(vec![vec![0]]));
    }
}
