#[path = "../domain/stations.rs"]
mod stations;
use stations::*;

fn main() {
    let stations = 3;
    let _ = flow! {
        name: "stations",
        stages: {
            readings = source!(Reading => from_iter(readings()));
            checked = transform!(Reading -> Checked => map(check), parallel: stations);
            per_station = stateful!(Checked -> (String, u64) => group_by(|c: &Checked| c.station.clone(), |n: &mut u64, _c: Checked| *n += 1).emit_on_eof(), parallel: 2, key: |c: &Checked| c.station.clone());
            // A key's argument type is inferred from the stage's input.
            alarms = stateful!(Checked -> (String, u64) => group_by(|c: &Checked| c.station.clone(), |n: &mut u64, c: Checked| *n += u64::from(c.alarm)).emit_on_eof(), parallel: 2, key: |c| c.station.clone());
            out = sink!((String, u64) => console());
            alarm_out = sink!((String, u64) => console());
            // Observers too: each instance sees its share (here by station).
            watch = observer!(Checked => observe(|c: &Checked| assert!(c.celsius > -90.0)), parallel: 2, key: |c| c.station.clone());
        },
        topology: {
            readings |> checked |> per_station |> out;
            checked |> alarms |> alarm_out;
            checked |> watch;
        }
    };
}
