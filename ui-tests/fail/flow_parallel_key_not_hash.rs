#[path = "../domain/stations.rs"]
mod stations;
use stations::*;

fn main() {
    let _ = flow! {
        name: "stations",
        stages: {
            readings = source!(Reading => from_iter(readings()));
            checked = transform!(Reading -> Checked => map(check), parallel: 4);
            per_station = stateful!(Checked -> (String, u64) => group_by(|c: &Checked| c.station.clone(), |n: &mut u64, _c: Checked| *n += 1).emit_on_eof(), parallel: 2, key: |c: &Checked| c.celsius);
            out = sink!((String, u64) => console());
        },
        topology: {
            readings |> checked |> per_station |> out;
        }
    };
}
