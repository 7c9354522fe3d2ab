// The Java driver's JsonWriter as an oracle for src/pipeline/output/javaJson.ts: reads one canonical
// Extended JSON document per line on stdin and prints, per document, four lines: strict with ", "
// (the MongoDB connector's DefaultJson), strict with "," (Debezium's before/after), relaxed with ","
// (Debezium's key) and relaxed with ", " (Debezium's updatedFields). JsonWriter escapes line breaks, so
// every output is one line. Run with the bson jar on the class path (java -cp <libs>/* this file).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.bson.BsonDocument;
import org.bson.json.JsonMode;
import org.bson.json.JsonWriterSettings;

public class JavaJsonOracle {
  @SuppressWarnings("deprecation")
  public static void main(String[] args) throws Exception {
    JsonWriterSettings strictSpaced = JsonWriterSettings.builder().outputMode(JsonMode.STRICT).build();
    JsonWriterSettings strictCompact = JsonWriterSettings.builder().outputMode(JsonMode.STRICT)
        .indent(true).indentCharacters("").newLineCharacters("").build();
    JsonWriterSettings relaxedCompact = JsonWriterSettings.builder().outputMode(JsonMode.RELAXED)
        .indent(true).indentCharacters("").newLineCharacters("").build();
    JsonWriterSettings relaxedSpaced = JsonWriterSettings.builder().outputMode(JsonMode.RELAXED).build();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    StringBuilder out = new StringBuilder();
    for (String line; (line = in.readLine()) != null; ) {
      if (line.isEmpty()) continue;
      BsonDocument doc = BsonDocument.parse(line);
      out.append(doc.toJson(strictSpaced)).append('\n');
      out.append(doc.toJson(strictCompact)).append('\n');
      out.append(doc.toJson(relaxedCompact)).append('\n');
      out.append(doc.toJson(relaxedSpaced)).append('\n');
    }
    System.out.write(out.toString().getBytes(StandardCharsets.UTF_8));
    System.out.flush();
  }
}
