#[path = "../domain/stations.rs"]
mod stations;
use stations::*;

/// Counts what it checked; not `Clone`.
struct Checker { seen: u64 }

impl Transform<Reading, Checked> for Checker {
    async fn process(&mut self, r: Reading, out: &mut Emitter<Checked>) -> Result<(), StageError> {
        self.seen += 1;
        out.emit(check(r));
        Ok(())
    }
}

fn main() {
    let _ = flow! {
        name: "stations",
        stages: {
            readings = source!(Reading => from_iter(readings()));
            checked = transform!(Reading -> Checked => Checker { seen: 0 }, parallel: 4);
            per_station = stateful!(Checked -> (String, u64) => group_by(|c: &Checked| c.station.clone(), |n: &mut u64, _c: Checked| *n += 1).emit_on_eof(), parallel: 2, key: |c: &Checked| c.station.clone());
            out = sink!((String, u64) => console());
        },
        topology: {
            readings |> checked |> per_station |> out;
        }
    };
}
// mended: struct Checker { seen: u64 } ==> #[derive(Clone)]\nstruct Checker { seen: u64 }
